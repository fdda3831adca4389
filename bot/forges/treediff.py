"""Changed files from two git trees, for changes the forge's own listing cuts short.

GitHub lists at most 3,000 files of a pull request and 300 of a compare; GitLab truncates
large merge request diffs. Comparing the trees of the two commits is exact whatever the
size: one recursive listing per commit when the forge answers it whole, else a walk that
descends only into subtrees whose ids differ. The work is bounded (`Budget`): a change
that cannot be listed within it raises `ListingIncomplete`, and the caller fails closed.
Renames show as a deletion and an addition. Submodule pointers are not files: left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from bot.change import FileStatus

MAX_REQUESTS = 600
MAX_SECONDS = 120.0


class ListingIncomplete(Exception):
    """The change could not be listed whole; the message says what was not done."""


@dataclass(frozen=True)
class Entry:
    """One tree entry: `path` from the repository root, `type` blob | tree | commit."""

    path: str
    type: str
    sha: str


@dataclass(frozen=True)
class TreeChange:
    path: str
    status: FileStatus
    sha: str | None  # blob id at head; at base for a deletion


class Budget:
    """At most `max_requests` API requests and `max_seconds` for one listing."""

    def __init__(self, max_requests: int = MAX_REQUESTS, max_seconds: float = MAX_SECONDS):
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.used = 0
        self._deadline = time.monotonic() + max_seconds

    def charge(self, requests: int = 1) -> None:
        """Account for requests about to be made; raise when over the budget."""
        if self.used + requests > self.max_requests:
            raise ListingIncomplete(
                f"reading the git trees needs more than {self.max_requests} API requests"
            )
        if time.monotonic() > self._deadline:
            raise ListingIncomplete(
                f"reading the git trees took longer than {self.max_seconds:.0f} s"
            )
        self.used += requests


class TreeSource(Protocol):
    """How one forge reads git trees; every request is charged to the budget."""

    def whole(self, commit: str, budget: Budget) -> tuple[list[Entry], bool]:
        """Every entry of the commit's tree (recursive) and whether the answer is cut."""
        ...

    def level(self, commit: str, path: str, sha: str, budget: Budget) -> list[Entry]:
        """The direct entries of the tree `sha` found at `path` ("" and the commit for the
        root) of `commit`; raises `ListingIncomplete` if the forge cuts even that."""
        ...


def diff_trees(source: TreeSource, base: str, head: str, budget: Budget) -> list[TreeChange]:
    """Files that differ between the trees of `base` and `head`, sorted by path."""
    before, cut = source.whole(base, budget)
    if not cut:
        after, cut = (before, cut) if head == base else source.whole(head, budget)
        if not cut:
            return _diff_blobs(_blobs(before), _blobs(after))
    walk = _Walk(source, base, head, budget)
    walk.level("", base, head)
    return sorted(walk.out, key=lambda c: c.path)


def list_tree(source: TreeSource, commit: str, budget: Budget) -> dict[str, str]:
    """{path: blob id} of every file at `commit`, walking tree by tree when the recursive
    listing is cut."""
    entries, cut = source.whole(commit, budget)
    if not cut:
        return _blobs(entries)
    return {c.path: c.sha or "" for c in _walk_one(source, commit, budget)}


def _walk_one(source: TreeSource, commit: str, budget: Budget) -> list[TreeChange]:
    walk = _Walk(source, commit, commit, budget)
    walk.level("", None, commit)
    return walk.out


def _blobs(entries: list[Entry]) -> dict[str, str]:
    return {e.path: e.sha for e in entries if e.type == "blob"}


def _diff_blobs(before: dict[str, str], after: dict[str, str]) -> list[TreeChange]:
    out = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            out.append(TreeChange(path, FileStatus.ADDED, new))
        elif new is None:
            out.append(TreeChange(path, FileStatus.DELETED, old))
        else:
            out.append(TreeChange(path, FileStatus.MODIFIED, new))
    return out


@dataclass
class _Walk:
    """A walk down the trees of `base` and `head`, gathering the changed files in `out`."""

    source: TreeSource
    base: str
    head: str
    budget: Budget
    out: list[TreeChange] = field(default_factory=list)

    def level(self, path: str, old_tree: str | None, new_tree: str | None) -> None:
        """Compare one directory level, descending only where the subtree ids differ."""
        source, budget = self.source, self.budget
        left = _named(source.level(self.base, path, old_tree, budget)) if old_tree else {}
        right = _named(source.level(self.head, path, new_tree, budget)) if new_tree else {}
        for name in sorted(left.keys() | right.keys()):
            a, b = left.get(name), right.get(name)
            if a is not None and b is not None and a.type == b.type and a.sha == b.sha:
                continue
            sub = f"{path}/{name}" if path else name
            a_tree = a.sha if a is not None and a.type == "tree" else None
            b_tree = b.sha if b is not None and b.type == "tree" else None
            if a_tree or b_tree:
                self.level(sub, a_tree, b_tree)
            a_blob = a is not None and a.type == "blob"
            b_blob = b is not None and b.type == "blob"
            if a_blob and b_blob:
                self.out.append(TreeChange(sub, FileStatus.MODIFIED, b.sha if b else None))
            elif a_blob:
                self.out.append(TreeChange(sub, FileStatus.DELETED, a.sha if a else None))
            elif b_blob:
                self.out.append(TreeChange(sub, FileStatus.ADDED, b.sha if b else None))


def _named(entries: list[Entry]) -> dict[str, Entry]:
    return {e.path.rsplit("/", 1)[-1]: e for e in entries}
