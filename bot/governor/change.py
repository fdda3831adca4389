"""A change's verdict: from parsed work to a published, stored check.

`ChangeGovernor.handle()` runs for each delivery that asks for an evaluation, and again
after a Slack decision or an expiry (`recheck()`). It is the only place that combines a
forge, the policy and the store for a change; `evaluate()` itself stays pure. With Slack
on, it also brings the change's approval requests in line with the verdict (`_review`):
a rejection in Slack fails the check, a break-glass passes it, an expired request says so,
and missing approvals are asked for once the check is published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import inbox, metrics, store
from bot.approvals import decisions, queries, requests
from bot.approvals.models import RequestKind, RequestState
from bot.change import Approval, Change, Decision, Verdict
from bot.forges import RECHECK, Forge, Landed, Work
from bot.governor.messages import SlackRequests
from bot.governor.policy import PolicyHolder, effective_policy
from bot.governor.routing import Result
from bot.policy.approvers import Directory
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy
from bot.setup.pending import GitHubNotRegistered
from bot.slack.blocks import findings_detail

log = logging.getLogger(__name__)

#: work that this server asked for itself (after a Slack decision, an expiry): it never
#: re-opens an expired approval request; a forge event (a re-run, a push) does
SELF_EVENTS = frozenset({RECHECK})


@dataclass(frozen=True)
class Handled:
    """What handling did: `published` a verdict, or skipped the work as `stale`."""

    status: str  # "published" | "stale"
    decision: str | None = None
    details_url: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Override:
    """The check differs from what the findings say, and `note` says why."""

    decision: Decision
    note: str


@dataclass
class Followup:
    """Slack work left once the check is published: messages to post and to update."""

    post: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.post or self.update)


@dataclass(frozen=True)
class Judged:
    """One change evaluated, with what its approval requests are brought in line with."""

    forge: str
    subject: str
    change: Change
    verdict: Verdict
    policy: Policy  # the effective policy the verdict was reached under
    forge_approvals: list[Approval]
    directory: Directory
    details_url: str


@dataclass(frozen=True)
class Missing:
    """The approvals a verdict still misses, per group: its rules and how many it needs."""

    rules: dict[str, list[str]]
    needed: dict[str, int]

    @classmethod
    def of(cls, verdict: Verdict) -> Missing:
        rules: dict[str, list[str]] = {}
        needed: dict[str, int] = {}
        for status in verdict.missing_approvals:
            rules.setdefault(status.group, []).append(status.rule)
            needed[status.group] = max(needed.get(status.group, 1), status.required)
        return cls(rules, needed)


def details_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v/{token}"


def bind_basis(engine: Engine, subject: str, change: Change, merge_base: str | None) -> Change:
    """The change with the base it is shown against ("<base ref>@<merge base>") and, if the
    head was shown against another base before (a retarget), since when: approvals given
    before then saw another diff."""
    basis = f"{change.base_ref or ''}@{merge_base or ''}"
    since = store.record_basis(engine, subject, change.head, basis)
    return dataclasses.replace(change, basis=basis, basis_since=since)


def collective_entries(policy: Policy, system: str) -> list[str]:
    """Team slugs (`@org/team`) named in the policy's groups for one system."""
    seen: dict[str, None] = {}
    for group in policy.groups.values():
        for member in group.members(system):
            if member.startswith("@"):
                seen.setdefault(member, None)
    return list(seen)


def merge_directories(*directories: Directory) -> Directory:
    members: dict[str, frozenset[str]] = {}
    for directory in directories:
        members.update(directory.members)
    email_of = next((d.email_of for d in directories if d.email_of is not None), None)
    return Directory(members=members, email_of=email_of)


def _who(system: str, user: str) -> str:
    return f"{user} ({system})"


class ChangeGovernor:
    """Evaluates changes and publishes their checks; with Slack, keeps their requests."""

    def __init__(
        self,
        engine: Engine,
        holder: PolicyHolder,
        forges: Mapping[str, Forge],
        *,
        public_url: str,
        slack: SlackRequests | None = None,
        expires_after: dt.timedelta = dt.timedelta(hours=72),
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_deferred=True)
        self.holder = holder
        self.forges = dict(forges)
        self.public_url = public_url
        self.slack = slack
        self.expires_after = expires_after

    # -- entry points ------------------------------------------------------------------
    def action(self, work: Work, forge: Forge, item: inbox.Claimed) -> Result:
        """The workers' "evaluate" action."""
        handled = self.handle(work, forge, received_at=item.received_at, delivery_key=item.key)
        if handled.status == "stale":
            return inbox.IGNORED, handled.reason
        return inbox.DONE, None

    def recheck(self, forge_name: str, repo: str, number: int, delivery_key: str | None) -> str:
        """Evaluate a pull/merge request again, as it is now, and publish the check."""
        forge = self.forges.get(forge_name)
        if forge is None:
            return f"forge {forge_name} cannot re-evaluate {repo}#{number}"
        try:
            work = forge.change_work(repo, number)
        except GitHubNotRegistered:
            return f"forge {forge_name} cannot re-evaluate {repo}#{number}"
        if work.action != "evaluate":
            return work.reason or "not evaluated"
        handled = self.handle(work, forge, received_at=store.utcnow(), delivery_key=delivery_key)
        return f"{handled.status} {handled.decision or ''}".strip()

    def handle(
        self,
        work: Work,
        forge: Forge,
        *,
        received_at: dt.datetime,
        delivery_key: str | None = None,
    ) -> Handled:
        """Evaluate one change and publish the verdict, unless a newer head already won.

        With Slack on, approvals given in Slack count too, missing ones are asked for in
        Slack once the check is published, and a rejection or a break-glass in Slack
        decides the check (its note says so)."""
        change = work.change
        if change is None:
            raise ValueError(f"work {work.action!r} for {work.subject!r} carries no change")
        subject = work.subject or f"{forge.name}:{change.repo}@{change.head}"
        if not store.claim_head(self.engine, subject, change.head, received_at):
            metrics.STALE_SKIPPED.labels(forge.name).inc()
            log.info("stale delivery for %s (head %s): a newer head was seen", subject, change.head)
            return Handled("stale", reason=f"head {change.head} superseded by a newer delivery")
        token = store.new_token()
        url = details_url(self.public_url, token)
        forge.start(change, url)
        judged = self._judge(work, forge, subject, url)
        override, followup = None, Followup()
        if self.slack is not None:
            reopen = work.event not in SELF_EVENTS
            override, followup = self._review(judged, delivery_key, reopen_expired=reopen)
        verdict = judged.verdict
        if override is not None:
            verdict = dataclasses.replace(verdict, decision=override.decision)
        self._publish(forge, dataclasses.replace(judged, verdict=verdict), token, delivery_key,
                      override)  # fmt: skip
        if self.slack is not None and followup:
            # after the check: a Slack failure retries both
            self.slack.post_requests(followup.post)
            self.slack.update_messages(followup.update)
        return Handled("published", decision=str(verdict.decision), details_url=url)

    # -- judging -----------------------------------------------------------------------
    def _judge(self, work: Work, forge: Forge, subject: str, url: str) -> Judged:
        """The verdict under the effective policy, counting forge and Slack approvals."""
        change = work.change
        assert change is not None
        governing = effective_policy(self.holder.policy, forge, change)
        view = forge.view(change)
        if change.number is not None:  # approvals bind to the head and the base it is shown on
            change = bind_basis(self.engine, subject, change, view.shown_base())
            view.change = change
        forge_approvals = forge.approvals(change)
        entries = collective_entries(governing, forge.name)
        directory = forge.directory(entries) if entries else Directory()
        slack_approvals: list[Approval] = []
        if self.slack is not None:
            slack_approvals = self._slack_approvals(subject, change.head)
            directory = merge_directories(directory, self.slack.directory(governing))
        for landed in work.landed:
            forge_approvals = [*forge_approvals, *self._landed_approvals(forge, change, landed)]
        verdict = evaluate(
            governing, view, [*forge_approvals, *slack_approvals], directory=directory
        )
        return Judged(
            forge.name, subject, change, verdict, governing, forge_approvals, directory, url
        )

    def _slack_approvals(self, subject: str, sha: str) -> list[Approval]:
        with Session(self.reader) as session:
            return queries.approvals_for(session, subject, sha)

    def _landed_approvals(self, forge: Forge, change: Change, landed: Landed) -> list[Approval]:
        """The approvals a merged pull/merge request had on its head, for the commit that
        merged it. The forge lists a request as landed only when the merge commit holds the
        very files of that head: approvers approved exactly what is now on the branch."""
        head = landed.head
        theirs = dataclasses.replace(change, number=landed.number, head=head, base=None)
        given = [a for a in forge.approvals(theirs) if a.sha == head]
        if self.slack is not None:
            given += self._slack_approvals(landed.subject, head)
        return [dataclasses.replace(a, sha=change.head, covers=landed.covers) for a in given]

    def _publish(
        self,
        forge: Forge,
        judged: Judged,
        token: str,
        delivery_key: str | None,
        override: Override | None,
    ) -> None:
        """Store the verdict (the details page reads it), then post the check."""
        change, verdict = judged.change, judged.verdict
        note = override.note if override is not None else None
        store.save_evaluation(
            self.engine,
            store.PublishedVerdict(
                token=token,
                forge=forge.name,
                subject=judged.subject,
                repo=change.repo,
                number=change.number,
                verdict=verdict,
                delivery_id=delivery_key,
                change=change,
                note=note,
            ),
        )
        if note is not None:
            forge.publish(change, verdict, judged.details_url, note=note)
        else:
            forge.publish(change, verdict, judged.details_url)
        metrics.VERDICTS.labels(forge.name, str(verdict.decision)).inc()
        log.info(
            "%s %s@%s: %s (%d findings)",
            judged.subject,
            change.repo,
            change.head[:12],
            verdict.decision,
            len(verdict.findings),
        )

    # -- approval requests -------------------------------------------------------------
    def _review(
        self, judged: Judged, delivery_key: str | None, *, reopen_expired: bool
    ) -> tuple[Override | None, Followup]:
        """Bring the requests of the change in line with its verdict (database only)."""
        followup = Followup()
        missing = Missing.of(judged.verdict)
        with Session(self.engine, expire_on_commit=False) as session:
            override = _slack_decided(session, judged)
            if judged.change.number is None:
                pass  # a push: already merged, its deploy is what a gate holds
            elif judged.verdict.decision is Decision.APPROVAL_REQUIRED and override is None:
                override = self._open_requests(
                    session, judged, missing, followup, delivery_key, reopen_expired
                )
            else:
                superseded = requests.supersede(
                    session,
                    judged.subject,
                    judged.change.head,
                    delivery_id=delivery_key,
                    basis=judged.change.basis or "",
                )
                followup.update += [r.id for r in superseded]
            _settle_satisfied(session, judged, missing, followup)
            session.commit()
        return override, followup

    def _open_requests(
        self,
        session: Session,
        judged: Judged,
        missing: Missing,
        followup: Followup,
        delivery_key: str | None,
        reopen_expired: bool,
    ) -> Override | None:
        """One request per group with missing approvals, at the head; an override when a
        request of this head expired (a forge event asks again, a recheck does not)."""
        assert self.slack is not None
        change, verdict = judged.change, judged.verdict
        expired: list[str] = []
        for group, rules in missing.rules.items():
            opened = requests.open_request(
                session,
                requests.RequestSpec(
                    subject=judged.subject,
                    sha=change.head,
                    group=group,
                    rules=rules,
                    min_approvals=missing.needed[group],
                    expires_after=self.expires_after,
                    basis=change.basis or "",
                    kind=RequestKind.CHANGE,
                    author=(judged.forge, change.author) if change.author else None,
                    repo=change.repo,
                    number=change.number,
                    title=change.title,
                    url=change.url,
                    channel=self.slack.change_channel(judged.policy, rules, group),
                    details={
                        "findings": findings_detail(f for f in verdict.findings if f.rule in rules),
                        "details_url": judged.details_url,
                    },
                ),
                delivery_id=delivery_key,
                reopen_expired=reopen_expired,
            )
            followup.update += [r.id for r in opened.superseded]
            request = opened.request
            if request.is_open and (opened.created or not request.message_ts):
                followup.post.append(request.id)
            if request.state == RequestState.EXPIRED:
                expired.append(group)
        if not expired:
            return None
        return Override(
            Decision.APPROVAL_REQUIRED,
            f"The approval request for {', '.join(expired)} expired: re-run the check or "
            "push to ask again",
        )


def _slack_decided(session: Session, judged: Judged) -> Override | None:
    """A break-glass passes a check that needs approval; a rejection in Slack fails any
    check that does not already fail."""
    subject, head, decision = judged.subject, judged.change.head, judged.verdict.decision
    glass = queries.break_glass_for(session, subject, head)
    if decision is Decision.APPROVAL_REQUIRED and glass is not None:
        return Override(
            Decision.PASS,
            f"Break-glass by {_who(glass.actor_system, glass.actor)}: {glass.reason} "
            "(retro-review pending)",
        )
    rejected = queries.rejection_for(session, subject, head)
    if decision is not Decision.FAIL and rejected is not None:
        why = f": {rejected.reason}" if rejected.reason else ""
        return Override(
            Decision.FAIL,
            f"Rejected in Slack by {_who(rejected.actor_system, rejected.actor)}{why}",
        )
    return None


def _settle_satisfied(
    session: Session, judged: Judged, missing: Missing, followup: Followup
) -> None:
    """Requests at this head whose group no longer misses anything: settle them."""
    for request in queries.requests_for(session, judged.subject, judged.change.head):
        if (
            request.is_open
            and request.kind == RequestKind.CHANGE
            and request.group_name not in missing.rules
            and request.group_name in judged.policy.groups
        ):
            refreshed = decisions.refresh(
                session,
                judged.policy,
                request.id,
                other_approvals=judged.forge_approvals,
                directory=judged.directory,
            )
            if refreshed.settled:
                followup.update.append(request.id)
