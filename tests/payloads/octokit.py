"""GitHub's own webhook examples, from the `@octokit/webhooks-examples` npm package.

Fetched once at a pinned version (a new release cannot change what the suite tests) by
`npm_packages`; set CHANGEGATE_OCTOKIT_EXAMPLES to a package directory to use another copy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from npm_packages import unpacked

PACKAGE = "@octokit/webhooks-examples"
VERSION = "7.6.1"


@dataclass(frozen=True)
class Example:
    event: str  # the X-GitHub-Event header value
    index: int
    payload: dict[str, Any]

    @property
    def name(self) -> str:
        action = self.payload.get("action")
        return f"{self.event}.{action}#{self.index}" if action else f"{self.event}#{self.index}"

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


def package_dir() -> Path:
    """The unpacked package at the pinned version, fetched with `npm pack` the first time."""
    override = os.environ.get("CHANGEGATE_OCTOKIT_EXAMPLES")
    if override:
        return Path(override)
    return unpacked(PACKAGE, VERSION)


def examples(flavour: str = "api.github.com") -> list[Example]:
    """Every example payload of github.com (or a GHES version such as `ghes-35`)."""
    index = json.loads((package_dir() / flavour / "index.json").read_text())
    out = []
    for event in index:
        for i, payload in enumerate(event["examples"]):
            out.append(Example(event=event["name"], index=i, payload=payload))
    return out
