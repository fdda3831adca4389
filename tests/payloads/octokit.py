"""GitHub's own webhook examples, from the `@octokit/webhooks-examples` npm package.

Fetched once with `npm pack` (a pinned version, so a new release cannot change what the
suite tests) into `.cache/` at the repository root (gitignored) and reused from there; set
CHANGEGATE_OCTOKIT_EXAMPLES to a package directory to use another copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "octokit-webhooks-examples"
PACKAGE = "@octokit/webhooks-examples"
VERSION = "7.6.1"
#: The README's prerequisite, word for word what a run without npm fails with.
NEEDS_NPM = (
    "The test suite needs npm (beside Python 3.11+ and git) to fetch "
    f"{PACKAGE}@{VERSION}: install it (apt-get install npm)"
)


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


def package_dir(cache: Path = CACHE) -> Path:
    """The unpacked package, fetching the pinned version with `npm pack` the first time
    (and again when the cache holds another version)."""
    override = os.environ.get("CHANGEGATE_OCTOKIT_EXAMPLES")
    if override:
        return Path(override)
    unpacked = cache / "package"
    if (unpacked / "api.github.com" / "index.json").exists() and _version(unpacked) == VERSION:
        return unpacked
    if shutil.which("npm") is None:
        raise RuntimeError(f"{NEEDS_NPM}; or point CHANGEGATE_OCTOKIT_EXAMPLES at the package")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(cache), "--silent"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(
            f"cannot fetch {PACKAGE}@{VERSION} with npm ({exc}); put the unpacked package at "
            f"{unpacked} or point CHANGEGATE_OCTOKIT_EXAMPLES at it"
        ) from exc
    tarball = cache / done.stdout.strip().splitlines()[-1]
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(cache, filter="data")
    return unpacked


def _version(unpacked: Path) -> str | None:
    try:
        return str(json.loads((unpacked / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def examples(flavour: str = "api.github.com") -> list[Example]:
    """Every example payload of github.com (or a GHES version such as `ghes-35`)."""
    index = json.loads((package_dir() / flavour / "index.json").read_text())
    out = []
    for event in index:
        for i, payload in enumerate(event["examples"]):
            out.append(Example(event=event["name"], index=i, payload=payload))
    return out
