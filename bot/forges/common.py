"""What both forges do the same way, written once: their caches, rate-limit waits, the
change a landed merge is judged as, team membership kept for a while, and the words of a
verdict's one-line headline."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from bot.change import Action, Change, Decision, Verdict
from bot.forges.cache import LRU
from bot.forges.work import Landed

L = TypeVar("L")
V = TypeVar("V")

# -- caches ------------------------------------------------------------------------------
_CLEARS: list[Callable[[], None]] = []  # every forge's `Caches.clear`


class Caches(Generic[L]):
    """One forge's process-wide caches. Everything in them is keyed by something immutable
    (a blob id, a commit SHA), so they are never invalidated, only bounded."""

    def __init__(self) -> None:
        #: blob id -> contents. Content-addressed: shared by every repository and evaluation.
        self.blobs: LRU[str, bytes] = LRU(max_entries=20_000, max_size=128 * 1024 * 1024)
        #: (api, repo, commit, path) -> blob id, or None when absent.
        self.paths: LRU[tuple[str, str, str, str], str | None] = LRU(max_entries=200_000)
        #: (api, repo, commit) -> {path: blob id} of the whole tree.
        self.trees: LRU[tuple[str, str, str], dict[str, str]] = LRU(max_entries=16)
        #: (api, repo, base, head) -> merge base SHA.
        self.merge_bases: LRU[tuple[str, str, str, str], str] = LRU(max_entries=4096)
        #: (api, repo, number or "", base, head) -> the changed files, listed whole.
        self.listings: LRU[tuple[str, str, str, str, str], L] = LRU(max_entries=512)
        _CLEARS.append(self.clear)

    def clear(self) -> None:
        for cache in (self.blobs, self.paths, self.trees, self.merge_bases, self.listings):
            cache.clear()


def clear_caches() -> None:
    """Forget everything every forge cached (tests; never needed for correctness)."""
    for clear in _CLEARS:
        clear()


class Expiring(Generic[V]):
    """Values kept for `ttl` seconds (team and group members: they change, but asking on
    every evaluation would cost a request each time)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], V]) -> V:
        """The value under `key` (case-insensitive), loaded again once it is `ttl` old."""
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key.lower())
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        with self._lock:
            self._data[key.lower()] = (now, value)
        return value


# -- rate limits ---------------------------------------------------------------------------
def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        try:
            return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


def until_reset(value: str | None) -> float | None:
    """Seconds until a rate-limit reset given as epoch seconds (`x-ratelimit-reset`,
    `RateLimit-Reset`)."""
    if not value or not value.strip().isdigit():
        return None
    return max(float(value) - time.time(), 0.0)


# -- a merge landing -----------------------------------------------------------------------
@dataclass(frozen=True)
class Merged:
    """A pull/merge request merged as a pushed commit, as its forge describes it."""

    subject: str  # e.g. "github:acme/app#12"
    number: int
    title: str
    description: str
    author: str | None
    labels: tuple[str, ...]
    head: str  # its head when merged


def landed_change(change: Change, merged: Sequence[Merged], mark: str) -> Change:
    """A push of a merge is the request landing: it is judged with what the request said
    (the playbook link, say), as it was when it passed, not with the merge commit's message.
    `mark` prefixes a request's number ("#" on GitHub, "!" on GitLab)."""
    if not merged:
        return change
    return dataclasses.replace(
        change,
        author=merged[0].author or change.author,
        description="\n\n".join([*(m.description for m in merged), change.description]).strip(),
        title=f"push to {change.base_ref}: "
        + ", ".join(f"{mark}{m.number} {m.title}" for m in merged),
        labels=tuple(sorted({label for m in merged for label in m.labels})),
    )


def landed(merged: Iterable[Merged], same_files: Callable[[Merged], bool]) -> tuple[Landed, ...]:
    """The merged requests whose approvals carry over: only those whose head holds the very
    files of the merge commit (approvers approved exactly what is now on the branch)."""
    return tuple(Landed(m.subject, m.number, m.head) for m in merged if same_files(m))


def initiators(system: str, logins: Iterable[str | None]) -> tuple[tuple[str, str], ...]:
    """(system, login) of everyone behind a deploy, each once, in the order first named."""
    seen: dict[str, None] = {}
    for login in logins:
        if login:
            seen.setdefault(login, None)
    return tuple((system, login) for login in seen)


# -- rendering ------------------------------------------------------------------------------
def headline(verdict: Verdict, *, status_line: bool = False) -> str:
    """The verdict in one line: a GitHub check run's title ("Approval required (rule)"), or
    with `status_line` a GitLab commit status's description ("approval required: rule"),
    worded as the README shows them. Callers cut it to their forge's limit."""
    blocking = sum(1 for f in verdict.findings if f.action is Action.BLOCK)
    if verdict.decision is Decision.FAIL:
        return f"{blocking} blocking finding{_s(blocking)}"
    if verdict.decision is Decision.APPROVAL_REQUIRED:
        rules = ", ".join(s.rule for s in verdict.missing_approvals)
        return f"approval required: {rules}" if status_line else f"Approval required ({rules})"
    warned = len(verdict.findings)
    if status_line:
        return "passed" + (f" ({warned} warning{_s(warned)})" if warned else "")
    return "Passed" + (f" with {warned} warning{_s(warned)}" if warned else "")


def with_note(markdown: str, note: str | None) -> str:
    """A rendered summary headed by `note` (a rejection in Slack, a break-glass) in bold."""
    return f"**{note}**\n\n{markdown}" if note else markdown


def _s(count: int) -> str:
    return "" if count == 1 else "s"
