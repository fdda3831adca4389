"""The one orchestrator: from parsed work to a published, stored verdict.

`handle()` is called by a worker for each delivery that asks for an evaluation. It is the
only place that combines a forge, the policy and the store; `evaluate()` itself stays pure.
The admin policy is held by a `PolicyHolder` that reloads the file when it changes and
keeps the last good policy when the new file is invalid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from bot import metrics, store
from bot.change import Approval, Change
from bot.forges import RECHECK, Forge, Landed, Work
from bot.policy.approvers import Directory
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy, PolicyError, load_policy_file
from bot.policy.sources import REPOSITORY_POLICY
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.approvals.service import ApprovalService

log = logging.getLogger(__name__)

#: work that this server asked for itself (after a Slack decision, an expiry): it never
#: re-opens an expired approval request; a forge event (a re-run, a push) does
SELF_EVENTS = frozenset({RECHECK})


class PolicyHolder:
    """The admin policy, reloaded when its file changes; never replaced by a broken one.

    The first load happens in the constructor and raises `PolicyError` (FILE:LINE:COL), so
    a server never starts on a policy it could not load.
    """

    def __init__(self, path: Path, *, reload_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.reload_seconds = reload_seconds
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._policy = load_policy_file(self.path)
        self.loaded_at = store.utcnow()
        self._checked = time.monotonic()
        metrics.POLICY_LOADED.set(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyHolder:
        """CHANGEGATE_POLICY; the default falls back to the bundled policy when the relative
        `policies/default.yml` is not there (an installed package run from anywhere)."""
        from bot.policy.sources import resolve_policy_setting

        path = resolve_policy_setting(str(settings.policy))
        return cls(path, reload_seconds=settings.policy_reload_seconds)

    @classmethod
    def of(cls, policy: Policy, path: Path = Path("<memory>")) -> PolicyHolder:
        """A fixed policy (tests, `policy simulate`): never reloaded."""
        holder = cls.__new__(cls)
        holder.path, holder.reload_seconds, holder.error = path, 0.0, None
        holder._lock, holder._stamp, holder._policy = threading.Lock(), None, policy
        holder._checked = time.monotonic()
        holder.loaded_at = store.utcnow()
        return holder

    @property
    def policy(self) -> Policy:
        if self.reload_seconds > 0 and time.monotonic() - self._checked >= self.reload_seconds:
            self.reload_if_changed()
        return self._policy

    def reload_if_changed(self) -> bool:
        """Reload when the file's mtime or size changed. True if a new policy is in force."""
        with self._lock:
            self._checked = time.monotonic()
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                policy = load_policy_file(self.path)
            except PolicyError as exc:
                self.error = str(exc)
                metrics.POLICY_LOADED.set(0)
                metrics.POLICY_RELOADS.labels("error").inc()
                log.error("policy %s is invalid; keeping the last good one:\n%s", self.path, exc)
                return False
            self._policy, self.error = policy, None
            self.loaded_at = store.utcnow()
            metrics.POLICY_LOADED.set(1)
            metrics.POLICY_RELOADS.labels("ok").inc()
            log.info("policy %s reloaded", self.path)
            return True

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class Outcome:
    """What handling did: `published` a verdict, or skipped the work as `stale`."""

    status: str  # "published" | "stale"
    decision: str | None = None
    details_url: str | None = None
    reason: str = ""


def _landed_approvals(
    forge: Forge, change: Change, landed: Landed, approvals: ApprovalService | None
) -> list[Approval]:
    """The approvals a merged pull/merge request had on its head, for the commit that
    merged it. The forge lists a request as landed only when the merge commit holds the
    very files of that head: approvers approved exactly what is now on the branch."""
    head = landed.head
    theirs = dataclasses.replace(change, number=landed.number, head=head, base=None)
    given = [a for a in forge.approvals(theirs) if a.sha == head]
    if approvals is not None:
        given += approvals.approvals_for(landed.subject, head)
    return [dataclasses.replace(a, sha=change.head, covers=landed.covers) for a in given]


def bind_basis(engine: Engine, subject: str, change: Change, merge_base: str | None) -> Change:
    """The change with the base it is shown against ("<base ref>@<merge base>") and, if the
    head was shown against another base before (a retarget), since when: approvals given
    before then saw another diff."""
    basis = f"{change.base_ref or ''}@{merge_base or ''}"
    since = store.record_basis(engine, subject, change.head, basis)
    return dataclasses.replace(change, basis=basis, basis_since=since)


def details_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v/{token}"


def effective_policy(admin: Policy, forge: Forge, work: Work) -> Policy:
    """Admin policy, tightened by the repository's `.changegate.yml` from its default
    branch (never from the change itself: a change does not govern itself)."""
    assert work.change is not None
    from bot.policy.merge import merge_policies

    return merge_policies(admin, forge.repository_policy(work.change), REPOSITORY_POLICY)


def collective_entries(policy: Policy, system: str) -> list[str]:
    """Team slugs (`@org/team`) named in the policy's groups for one system."""
    seen: dict[str, None] = {}
    for group in policy.groups.values():
        for member in group.members(system):
            if member.startswith("@"):
                seen.setdefault(member, None)
    return list(seen)


def handle(
    work: Work,
    forge: Forge,
    *,
    engine: Engine,
    policy: Policy,
    public_url: str,
    received_at: dt.datetime,
    delivery_key: str | None = None,
    approvals: ApprovalService | None = None,
) -> Outcome:
    """Evaluate one change and publish the verdict, unless a newer head already won.

    With `approvals` (Slack on), approvals given in Slack count too, missing ones are
    asked for in Slack once the check is published, and a rejection or a break-glass in
    Slack decides the check (its note says so)."""
    change = work.change
    if change is None:
        raise ValueError(f"work {work.action!r} for {work.subject!r} carries no change")
    subject = work.subject or f"{forge.name}:{change.repo}@{change.head}"
    if not store.claim_head(engine, subject, change.head, received_at):
        metrics.STALE_SKIPPED.labels(forge.name).inc()
        log.info("stale delivery for %s (head %s): a newer head was seen", subject, change.head)
        return Outcome("stale", reason=f"head {change.head} superseded by a newer delivery")

    token = store.new_token()
    url = details_url(public_url, token)
    forge.start(change, url)
    governing = effective_policy(policy, forge, work)
    view = forge.view(change)
    if change.number is not None:  # approvals bind to the head and the base it is shown on
        change = bind_basis(engine, subject, change, view.shown_base())
        view.change = change
    forge_approvals = forge.approvals(change)
    entries = collective_entries(governing, forge.name)
    directory = forge.directory(entries) if entries else Directory()
    slack_approvals = []
    if approvals is not None:
        from bot.approvals.service import merge_directories

        slack_approvals = approvals.approvals_for(subject, change.head)
        directory = merge_directories(directory, approvals.directory(governing))
    for landed in work.landed:
        forge_approvals = [
            *forge_approvals,
            *_landed_approvals(forge, change, landed, approvals),
        ]
    verdict = evaluate(governing, view, [*forge_approvals, *slack_approvals], directory=directory)
    override, followup = None, None
    if approvals is not None:
        override, followup = approvals.review(
            forge=forge.name,
            change=change,
            subject=subject,
            verdict=verdict,
            policy=governing,
            forge_approvals=forge_approvals,
            directory=directory,
            details_url=url,
            delivery_key=delivery_key,
            reopen_expired=work.event not in SELF_EVENTS,
        )
        if override is not None:
            verdict = dataclasses.replace(verdict, decision=override.decision)
    store.save_evaluation(
        engine,
        token=token,
        forge=forge.name,
        subject=subject,
        repo=change.repo,
        number=change.number,
        verdict=verdict,
        delivery_id=delivery_key,
        change=change,
        note=override.note if override is not None else None,
    )
    if override is not None:
        forge.publish(change, verdict, url, note=override.note)
    else:
        forge.publish(change, verdict, url)
    if approvals is not None and followup:
        approvals.follow_up(followup)  # after the check: a Slack failure retries both
    metrics.VERDICTS.labels(forge.name, str(verdict.decision)).inc()
    log.info(
        "%s %s@%s: %s (%d findings)",
        subject,
        change.repo,
        change.head[:12],
        verdict.decision,
        len(verdict.findings),
    )
    return Outcome("published", decision=str(verdict.decision), details_url=url)
