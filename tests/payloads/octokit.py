"""GitHub's own webhook examples, from the `@octokit/webhooks-examples` npm package.

Fetched once with `npm pack` into `.cache/` at the repository root (gitignored) and
reused from there; set CHANGEGATE_OCTOKIT_EXAMPLES to a package directory to use another copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "octokit-webhooks-examples"
PACKAGE = "@octokit/webhooks-examples"


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
    """The unpacked package, fetching it with `npm pack` the first time."""
    override = os.environ.get("CHANGEGATE_OCTOKIT_EXAMPLES")
    if override:
        return Path(override)
    unpacked = CACHE / "package"
    if (unpacked / "api.github.com" / "index.json").exists():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["npm", "pack", PACKAGE, "--pack-destination", str(CACHE), "--silent"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(
            f"cannot fetch {PACKAGE} with npm ({exc}); put the unpacked package at {unpacked} "
            "or point CHANGEGATE_OCTOKIT_EXAMPLES at it"
        ) from exc
    tarball = CACHE / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        tar.extractall(CACHE, filter="data")
    return unpacked


def examples(flavour: str = "api.github.com") -> list[Example]:
    """Every example payload of github.com (or a GHES version such as `ghes-35`)."""
    index = json.loads((package_dir() / flavour / "index.json").read_text())
    out = []
    for event in index:
        for i, payload in enumerate(event["examples"]):
            out.append(Example(event=event["name"], index=i, payload=payload))
    return out
