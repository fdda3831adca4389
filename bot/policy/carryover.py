"""Which approvals of queued pull requests carry over to a merge queue's group, file by file.

A merge queue (GitHub's merge group, GitLab's merge train) tests the target branch with one
or more pull requests merged on top. Each request was approved for what it changed; the
group may hold more (another request, a conflict resolution, a commit on the queue's
branch). So a request's approvals carry over only to the files whose content at the group's
head is exactly what that request's head holds, among the files the request changed
(compared by blob id; a deletion matches a deletion). A file no approved request brought
needs its own approval. A request that brought every file of the group vouches for the
group as a whole, as a merged request does for the commit that landed it.

Pure: the forge lists the files and blob ids, this module only compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from bot.change import Approval
from bot.policy.approvers import Tally

#: path -> blob id at a head, None where that head deletes the path
Files = Mapping[str, str | None]

#: in `covers`: the request brought the whole group, so its approvals vouch for every
#: finding, those about the change itself (no file) or a file it did not change included
WHOLE_CHANGE = ""


def covered_paths(group: Files, brought: Files) -> frozenset[str]:
    """The group's paths whose content at its head is what one request brought (`brought`:
    the files that request changed, at its head). `WHOLE_CHANGE` is among them when the
    request brought every file of the group."""
    covered = frozenset(p for p, blob in group.items() if p in brought and brought[p] == blob)
    if group and covered == frozenset(group):
        return covered | {WHOLE_CHANGE}
    return covered


def covering(approvals: Iterable[Approval], path: str) -> list[Approval]:
    """The approvals that vouch for `path` (those for the whole change always do)."""
    return [
        a for a in approvals if a.covers is None or WHOLE_CHANGE in a.covers or path in a.covers
    ]


def least_approved(
    paths: Iterable[str], approvals: list[Approval], count: Callable[[list[Approval]], Tally]
) -> Tally:
    """How approved a rule is that flagged `paths`: as approved as its least approved path.
    With no approval limited to some files, this is `count(approvals)` itself."""
    if all(a.covers is None for a in approvals):
        return count(approvals)
    tallies = [count(covering(approvals, path)) for path in sorted(set(paths))]
    return min(tallies, key=lambda t: len(t.granted), default=count([]))
