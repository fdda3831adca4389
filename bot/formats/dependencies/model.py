"""What a dependency reader yields: `Dep` (name, version, line) and what "major" means."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version


class Ecosystem(enum.StrEnum):
    PYTHON = "python"
    JAVASCRIPT = "javascript"
    RUBY = "ruby"
    GO = "go"
    RUST = "rust"


class DependencyFileError(ValueError):
    """A manifest that cannot be read at all (bad JSON or TOML); `line` when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


_RELEASE = re.compile(r"\s*[vV]?(\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class Dep:
    """One declared or locked dependency.

    `version` is the version compared (exact pin, locked version, or a range's lowest);
    `spec` is the constraint as written when the file gives a range rather than a version.
    """

    name: str
    version: str
    line: int | None
    ecosystem: Ecosystem
    spec: str | None = None

    @property
    def release(self) -> tuple[int, ...]:
        """(epoch, major, minor, patch, ...): the numeric part, padded to three components."""
        epoch, parts = release_of(self.version, self.ecosystem) or (0, ())
        return (epoch, *parts, *(0,) * (3 - len(parts)))

    @property
    def major_key(self) -> tuple[int, ...]:
        """What must stay equal for an upgrade to be compatible.

        The release up to its leftmost non-zero component (plus the epoch): semver promises
        nothing across 0.x minors, so 0.3 -> 0.4 is as breaking as 1.x -> 2.0 (and 0.0.3 ->
        0.0.4 too), the same rule as Cargo's and npm's caret.
        """
        epoch, *parts = self.release
        for index, part in enumerate(parts):
            if part:
                return (epoch, *parts[: index + 1])
        return (epoch, *parts)

    @property
    def shown(self) -> str:
        """How to print the version: the range as written, or the bare version for a pin."""
        if self.spec is None:
            return self.version
        spec = self.spec.replace(" ", "")
        if spec.lstrip("=") == self.version:
            return self.version
        return self.spec


def release_of(version: str, ecosystem: Ecosystem) -> tuple[int, tuple[int, ...]] | None:
    if ecosystem is Ecosystem.PYTHON:
        try:
            parsed = Version(version)
        except InvalidVersion:
            pass
        else:
            return parsed.epoch, parsed.release
    match = _RELEASE.match(version)
    if match is None:
        return None
    return 0, tuple(int(p) for p in match.group(1).split("."))


def make_dep(
    name: str, version: str | None, line: int | None, eco: Ecosystem, spec: str | None = None
) -> Dep | None:
    """A Dep, or None when `version` is not a version at all."""
    if not version or release_of(version, eco) is None:
        return None
    return Dep(name=name, version=version, line=line, ecosystem=eco, spec=spec)
