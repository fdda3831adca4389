"""`dependency-major-upgrade`: a dependency whose major version rises between base and head.

The outage: a framework upgrade removed an API that the deploy script called, and workers
never started; the upgrade had slipped through as a routine change. A new major version is
allowed to break its API, so it deserves a reviewer who reads its migration guide.

What counts (see bot/formats/dependencies/ for how versions are read):

* each changed manifest or lockfile under `paths` is read at base and at head, and a
  package is reported when the highest version at head is of a higher major than the
  highest at base. For 0.x the leftmost non-zero component is the major (0.3 -> 0.4 is
  major, 1.2 -> 1.9 is not), as semver and Cargo/npm carets have it.
* a dependency new at head (or in a new file) has no base version: it is not reported.
  Adding a package is a different decision from upgrading one, and reporting every new
  dependency would make this rule noise; a package whose base constraint had no lower
  bound (`*`, unpinned) is likewise not compared.
* a package in both a manifest and its lockfile is reported for each file, at its line.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.formats.dependencies import (
    Dep,
    DependencyFileError,
    Ecosystem,
    is_manifest,
    read_dependencies,
)
from bot.rules.base import RuleBase, RuleContext
from bot.rules.strict import StrictModel


class DependencyMajorUpgradeOptions(StrictModel):
    ignore: list[str] = Field(
        default_factory=list, description="Package names (globs) whose upgrades are routine."
    )


class DependencyMajorUpgradeRule(RuleBase):
    kind: Literal["dependency-major-upgrade"] = "dependency-major-upgrade"
    options: DependencyMajorUpgradeOptions = Field(default_factory=DependencyMajorUpgradeOptions)

    def check(self, ctx: RuleContext) -> list[Finding]:
        if not ctx.view.has_base:
            return []
        findings: list[Finding] = []
        for changed in self.changed_files(ctx):
            if is_manifest(changed.path):
                findings.extend(self._check_file(ctx, changed.path, changed.old_path))
        return sorted(findings, key=Finding.sort_key)

    def _check_file(self, ctx: RuleContext, path: str, old_path: str | None) -> list[Finding]:
        view = ctx.view
        head_text = view.text(path, "head")
        if head_text is None:
            return [self.unreadable(path, view.unreadable_reason(path, "head") or "unreadable")]
        base_path = old_path or path
        base_text = view.text(base_path, "base")
        if base_text is None:
            reason = view.unreadable_reason(base_path, "base")
            # Absent at base: a new manifest, nothing to compare against.
            return [] if reason is None else [self.unreadable(path, f"base revision: {reason}")]
        try:
            head = read_dependencies(path, head_text)
        except DependencyFileError as exc:
            return [self.unreadable(path, str(exc), exc.line)]
        try:
            base = read_dependencies(base_path, base_text)
        except DependencyFileError as exc:
            return [self.unreadable(path, f"base revision: {exc}")]
        return [
            self._finding(path, old, new)
            for old, new in major_upgrades(base, head)
            if not self._ignored(new)
        ]

    def _ignored(self, dep: Dep) -> bool:
        """`ignore` globs match the normalised name, case-insensitively (PEP 503 for Python)."""
        name = dep.name.lower()
        for pattern in self.options.ignore:
            pattern = pattern.lower()
            if dep.ecosystem is Ecosystem.PYTHON:
                pattern = re.sub(r"[-_.]+", "-", pattern)
            if fnmatch.fnmatchcase(name, pattern):
                return True
        return False

    def _finding(self, path: str, old: Dep, new: Dep) -> Finding:
        zero = ""
        if old.release[1] == 0 and new.release[1] == 0:
            zero = (
                " (below 1.0 the leftmost non-zero component is the major: semver promises "
                "no compatibility between 0.x releases)"
            )
        return self.finding(
            path,
            new.line,
            f"{new.name} {old.shown} -> {new.shown}",
            f"major upgrade of {new.name} from {old.version} to {new.version}{zero}: a new "
            "major version may remove or change APIs that this code, its scripts or its "
            "deploy tooling call. Review the changelog and migration guide before merging.",
        )


def major_upgrades(base: list[Dep], head: list[Dep]) -> list[tuple[Dep, Dep]]:
    """(base, head) pairs of the packages whose highest major rose, in head file order.

    Where a file holds several versions of one package, the highest of each side counts:
    a second, higher major entering the tree is an upgrade; dropping the old one is not.
    """
    before = highest_per_package(base)
    pairs = []
    for key, new in highest_per_package(head).items():
        old = before.get(key)
        if old is not None and new.major_key > old.major_key:
            pairs.append((old, new))
    return sorted(pairs, key=lambda pair: (pair[1].line or 0, pair[1].name))


def highest_per_package(deps: list[Dep]) -> dict[tuple[Ecosystem, str], Dep]:
    """Each package's highest version in `deps` (a file may hold several of one package)."""
    best: dict[tuple[Ecosystem, str], Dep] = {}
    for dep in deps:
        key = (dep.ecosystem, dep.name)
        current = best.get(key)
        if current is None or (dep.major_key, dep.release) > (
            current.major_key,
            current.release,
        ):
            best[key] = dep
    return best
