"""Approval requests and their states: who may decide, when they expire, break-glass.

A request belongs to one subject (a pull request, or deploys of a repository to one
environment) at one SHA, one group, and the rules that asked. It is `pending`, then
`approved`, `rejected`, `expired` or `superseded` (a newer SHA arrived). Only a pending
request at the SHA the button names can be decided, only by a member of its group, never
by the change's author or the deploy's initiator; every refusal comes with a sentence a
Slack reply can show. Approvals given here are handed to `evaluate()` as
`Approval(system="slack")`, where they add up with the forge's own approvals.

Everything here runs in the caller's session and transaction (flushed, not committed),
and every state change is appended to the audit log in that same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import audit
from bot.approvals.freeze import (
    BreakGlassInfo,
    BreakGlassSettings,
    FreezeWindow,
    GateDecision,
    active_freeze,
    decide_gate,
)
from bot.approvals.models import (
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
    BreakGlassRecord,
    RequestKind,
    RequestState,
)
from bot.change import Approval
from bot.policy.approvers import EMPTY_DIRECTORY, Directory, is_member, person_key, tally
from bot.policy.schema import DeployGate, Policy
from bot.store import utcnow

DecisionKind = Literal["approve", "reject"]
#: a reminder goes out this long before expiry, at most
REMINDER_LEAD = dt.timedelta(hours=1)


def change_subject(forge: str, repo: str, number: int) -> str:
    """The subject of a pull/merge request: `github:acme/app#12`."""
    return f"{forge}:{repo}#{number}"


def deploy_subject(forge: str, repo: str, environment: str) -> str:
    """The subject of deploys of a repository to one environment: `github:acme/app@production`."""
    return f"{forge}:{repo}@{environment}"


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return utcnow()
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def _fmt(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


def _short(sha: str) -> str:
    return sha[:7]


# -- opening and superseding -----------------------------------------------------------


@dataclass
class Opened:
    request: ApprovalRequestRecord
    created: bool
    superseded: list[ApprovalRequestRecord] = field(default_factory=list)


def open_request(
    session: Session,
    *,
    subject: str,
    sha: str,
    group: str,
    rules: Sequence[str],
    min_approvals: int = 1,
    expires_after: dt.timedelta,
    basis: str = "",
    kind: RequestKind = RequestKind.CHANGE,
    author: tuple[str, str] | None = None,
    repo: str = "",
    number: int | None = None,
    title: str = "",
    url: str | None = None,
    environment: str | None = None,
    channel: str | None = None,
    details: dict[str, Any] | None = None,
    parent_id: str | None = None,
    delivery_id: str | None = None,
    reopen_expired: bool = False,
    now: dt.datetime | None = None,
) -> Opened:
    """Open (or find) the request of `group` for `subject` at `sha`.

    Idempotent: a second call for the same subject, SHA, group and kind returns the first
    request (with the rules brought up to date). Pending requests of the same subject and
    kind at another SHA are superseded; the caller updates their Slack messages. A
    superseded request whose SHA is the head again (a force-push back) is reopened, an
    expired one only with `reopen_expired`. `created` means: post a (new) Slack message.
    A request binds to the base the change was shown against too (`basis`): retargeting
    the change supersedes it like a new commit does.
    """
    now = _now(now)
    superseded = _supersede(session, subject, sha, kind, now, delivery_id, basis)
    existing = session.exec(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.subject == subject,
            ApprovalRequestRecord.sha == sha,
            ApprovalRequestRecord.basis == basis,
            ApprovalRequestRecord.group_name == group,
            ApprovalRequestRecord.kind == str(kind),
        )
    ).first()
    if existing is not None:
        revive = existing.state == RequestState.SUPERSEDED or (
            reopen_expired and existing.state == RequestState.EXPIRED
        )
        if revive:  # the head went back to this SHA (or a new deploy run asks again)
            existing.state, existing.state_reason = RequestState.PENDING, None
            existing.decided_at = existing.decided_by = existing.decided_by_system = None
            existing.expires_at = now + expires_after
            existing.remind_at = existing.expires_at - min(expires_after / 4, REMINDER_LEAD)
            existing.reminded_at = existing.message_ts = None
            existing.channel = channel or existing.channel
        if existing.is_open:
            existing.rules = sorted(set(rules))
        session.add(existing)
        session.flush()
        if revive:
            _audit(session, existing, "approval.reopened", delivery_id=delivery_id, at=now)
        return Opened(existing, created=revive, superseded=superseded)
    expires_at = now + expires_after
    request = ApprovalRequestRecord(
        id=uuid.uuid4().hex,
        kind=str(kind),
        subject=subject,
        sha=sha,
        basis=basis,
        group_name=group,
        rules=sorted(set(rules)),
        min_approvals=min_approvals,
        author_system=author[0] if author else None,
        author=author[1] if author else None,
        state=RequestState.PENDING,
        repo=repo,
        number=number,
        title=title,
        url=url,
        environment=environment,
        channel=channel,
        details=audit._jsonable(details or {}),
        parent_id=parent_id,
        created_at=now,
        expires_at=expires_at,
        remind_at=expires_at - min(expires_after / 4, REMINDER_LEAD),
    )
    session.add(request)
    session.flush()
    _audit(session, request, "approval.requested", delivery_id=delivery_id, at=now)
    return Opened(request, created=True, superseded=superseded)


def _supersede(
    session: Session,
    subject: str,
    sha: str,
    kind: RequestKind,
    now: dt.datetime,
    delivery_id: str | None,
    basis: str | None = None,
) -> list[ApprovalRequestRecord]:
    """Pending requests at another SHA, or (with `basis`) shown against another base."""
    moved = col(ApprovalRequestRecord.sha) != sha
    if basis is not None:
        moved = sa.or_(moved, col(ApprovalRequestRecord.basis) != basis)
    stale = session.exec(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.subject == subject,
            ApprovalRequestRecord.kind == str(kind),
            ApprovalRequestRecord.state == RequestState.PENDING,
            moved,
        )
    ).all()
    for request in stale:
        retargeted = request.sha == sha
        _settle(
            session,
            request,
            RequestState.SUPERSEDED,
            f"superseded: the change now targets {basis.split('@', 1)[0] or 'another base'}"
            if retargeted and basis is not None
            else f"superseded by {_short(sha)}: a newer commit arrived",
            now,
            delivery_id=delivery_id,
            detail={"new_sha": sha, "new_basis": basis} if retargeted else {"new_sha": sha},
        )
    return list(stale)


def supersede(
    session: Session,
    subject: str,
    new_sha: str,
    *,
    kind: RequestKind = RequestKind.CHANGE,
    now: dt.datetime | None = None,
    delivery_id: str | None = None,
    basis: str | None = None,
) -> list[ApprovalRequestRecord]:
    """Supersede pending requests of `subject` at any SHA but `new_sha` (a push that needs
    no approval at all must still retire the old request), or at any base but `basis`."""
    return _supersede(session, subject, new_sha, kind, _now(now), delivery_id, basis)


def _settle(
    session: Session,
    request: ApprovalRequestRecord,
    state: RequestState,
    reason: str,
    now: dt.datetime,
    *,
    actor: tuple[str, str] | None = None,
    delivery_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    request.state = state
    request.state_reason = reason
    request.decided_at = now
    if actor is not None:
        request.decided_by_system, request.decided_by = actor
    session.add(request)
    session.flush()
    _audit(
        session,
        request,
        f"approval.{state}",
        actor=actor,
        delivery_id=delivery_id,
        at=now,
        detail={"reason": reason, **(detail or {})},
    )


def _audit(
    session: Session,
    request: ApprovalRequestRecord,
    action: str,
    *,
    actor: tuple[str, str] | None = None,
    delivery_id: str | None = None,
    at: dt.datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    audit.append(
        session,
        action=action,
        actor=actor,
        subject=request.subject,
        sha=request.sha,
        rules=request.rules,
        channel="slack" if actor and actor[0] == "slack" else (actor[0] if actor else "system"),
        delivery_id=delivery_id,
        decision=str(request.state),
        detail={"request": request.id, "group": request.group_name, **(detail or {})},
        at=at,
    )


def get_request(session: Session, request_id: str) -> ApprovalRequestRecord | None:
    return session.get(ApprovalRequestRecord, request_id)


def _locked(session: Session, request_id: str) -> ApprovalRequestRecord | None:
    """The request, row-locked until commit (PostgreSQL; SQLite has one writer anyway), so
    two people approving at once both count toward `min_approvals`."""
    return session.get(ApprovalRequestRecord, request_id, with_for_update=True)


def set_message(session: Session, request_id: str, channel: str, ts: str) -> None:
    """Remember where the request's Slack message is, to update it later."""
    request = session.get(ApprovalRequestRecord, request_id)
    if request is not None:
        request.channel, request.message_ts = channel, ts
        session.add(request)
        session.flush()


# -- deciding --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The result of a click. `accepted` False: `message` says why, for the clicker."""

    accepted: bool
    message: str
    request: ApprovalRequestRecord | None = None
    settled: bool = False  # the request left `pending` because of this decision
    approvers: tuple[str, ...] = ()


def _not_current(request: ApprovalRequestRecord, sha: str, now: dt.datetime) -> str | None:
    """Why a click on this request cannot count, or None."""
    if sha != request.sha:
        return (
            f"This button names commit {_short(sha)}, but the request is about "
            f"{_short(request.sha)}; nothing was recorded."
        )
    if request.state == RequestState.SUPERSEDED:
        return (
            f"This request is out of date: it was for commit {_short(request.sha)} and "
            f"{request.state_reason or 'a newer commit arrived'}. Decide on the newest "
            "request instead."
        )
    if request.state == RequestState.EXPIRED:
        when = _fmt(request.decided_at or request.expires_at)
        return f"This request expired at {when} without enough approvals."
    if request.state in (RequestState.APPROVED, RequestState.REJECTED):
        when = f" at {_fmt(request.decided_at)}" if request.decided_at else ""
        return f"This request was already {request.state}{when}: {request.state_reason}."
    return None


def initiators(request: ApprovalRequestRecord) -> list[tuple[str, str]]:
    """Everyone who set the request's subject in motion: its author, and for a deploy
    the people behind it (`details["initiators"]`: the workflow run's actor, the pull
    request authors of the SHA...), not only the bot account that created it."""
    found = [(request.author_system, request.author)] if request.author_system else []
    for entry in (request.details or {}).get("initiators") or []:
        if isinstance(entry, list | tuple) and len(entry) == 2 and all(entry):
            found.append((str(entry[0]), str(entry[1])))
    return [(str(s), str(u)) for s, u in found if s and u]


#: the reply to an author or initiator who tries to break glass on their own change
SELF_BREAK_GLASS = (
    "You made this change or started this deploy, so you cannot break glass on it: "
    "ask another member of {group}."
)


def is_initiator(
    policy: Policy,
    request: ApprovalRequestRecord,
    actor: tuple[str, str],
    directory: Directory = EMPTY_DIRECTORY,
) -> bool:
    me = person_key(policy, *actor, directory)
    return any(me == person_key(policy, *who, directory) for who in initiators(request))


def refusal(
    session: Session,
    policy: Policy,
    request: ApprovalRequestRecord,
    sha: str,
    actor: tuple[str, str],
    *,
    directory: Directory = EMPTY_DIRECTORY,
    now: dt.datetime | None = None,
    delivery_id: str | None = None,
) -> str | None:
    """Why `actor` may not decide `request` at `sha` now, or None if they may.

    Also usable before opening the reject-reason modal, so a non-member is told at once.
    A pending request past its deadline is expired here.
    """
    now = _now(now)
    if request.is_open and now >= request.expires_at:
        _settle(session, request, RequestState.EXPIRED, "expired", now, delivery_id=delivery_id)
    why = _not_current(request, sha, now)
    if why is None and is_initiator(policy, request, actor, directory):
        why = (
            "You started this deploy, so you cannot approve it."
            if request.kind == RequestKind.DEPLOY
            else "You made this change, so you cannot decide on it: "
            f"ask someone else in {request.group_name}."
        )
    group = policy.groups.get(request.group_name)
    if why is None and (group is None or not is_member(policy, group, *actor, directory)):
        why = f"You are not a member of {request.group_name}, who can decide on this request."
    if (
        why is None
        and session.exec(
            select(ApprovalDecisionRecord).where(
                ApprovalDecisionRecord.request_id == request.id,
                ApprovalDecisionRecord.person == person_key(policy, *actor, directory),
            )
        ).first()
    ):
        why = "You have already decided on this request."
    return why


def record_decision(
    session: Session,
    policy: Policy,
    request_id: str,
    sha: str,
    actor: tuple[str, str],
    decision: DecisionKind,
    reason: str = "",
    *,
    directory: Directory = EMPTY_DIRECTORY,
    other_approvals: Iterable[Approval] = (),
    delivery_id: str | None = None,
    now: dt.datetime | None = None,
) -> Outcome:
    """Record `actor`'s approve or reject of a request, or refuse it with a reason.

    `sha` comes from the button, not from the request: a click on a message about an older
    commit can never approve a newer one. `other_approvals` are approvals granted
    elsewhere (approving reviews on the forge) that count toward `min_approvals` too.
    One reject rejects the request.
    """
    now = _now(now)
    request = _locked(session, request_id)
    if request is None:
        return Outcome(False, "This approval request does not exist (any more).")
    why = refusal(
        session, policy, request, sha, actor, directory=directory, now=now, delivery_id=delivery_id
    )
    person = person_key(policy, *actor, directory)
    if why is not None:
        _audit(
            session,
            request,
            "approval.refused",
            actor=actor,
            delivery_id=delivery_id,
            at=now,
            detail={"clicked": decision, "clicked_sha": sha, "why": why},
        )
        return Outcome(False, why, request)
    session.add(
        ApprovalDecisionRecord(
            request_id=request.id,
            sha=sha,
            actor_system=actor[0],
            actor=actor[1],
            person=person,
            decision=decision,
            reason=reason or None,
            delivery_id=delivery_id,
            created_at=now,
        )
    )
    session.flush()
    _audit(
        session,
        request,
        f"approval.{decision}",
        actor=actor,
        delivery_id=delivery_id,
        at=now,
        detail={"reason": reason} if reason else None,
    )
    if decision == "reject":
        label = f"rejected by {_display(actor)}" + (f": {reason}" if reason else "")
        _settle(session, request, RequestState.REJECTED, label, now, actor=actor)
        return Outcome(True, f"You rejected this request ({_short(sha)}).", request, True)
    return _count(session, policy, request, directory, other_approvals, actor, now, delivery_id)


def _display(actor: tuple[str, str]) -> str:
    """Plain text (it also reaches forge checks): `U0ALICE (slack)`, `alice (github)`."""
    return f"{actor[1]} ({actor[0]})"


def _count(
    session: Session,
    policy: Policy,
    request: ApprovalRequestRecord,
    directory: Directory,
    other_approvals: Iterable[Approval],
    actor: tuple[str, str] | None,
    now: dt.datetime,
    delivery_id: str | None,
) -> Outcome:
    approvals = [*_slack_approvals(session, request), *other_approvals]
    counted = tally(
        policy,
        request.group_name,
        approvals,
        head=request.sha,
        author=None,
        authors=initiators(request),
        directory=directory,
    )
    granted = len(counted.granted)
    if granted >= request.min_approvals:
        _settle(
            session,
            request,
            RequestState.APPROVED,
            f"approved by {', '.join(counted.granted)}",
            now,
            actor=actor,
            delivery_id=delivery_id,
        )
        return Outcome(
            True, f"Approved ({granted}/{request.min_approvals}).", request, True, counted.granted
        )
    mine = f"{actor[1]} ({actor[0]})" if actor else None
    why_not = next((why for who, why in counted.ignored if who == mine), None)
    return Outcome(
        True,
        f"Your approval is recorded but does not count: {why_not}."
        if why_not
        else f"Your approval is recorded ({granted}/{request.min_approvals}).",
        request,
        False,
        counted.granted,
    )


def refresh(
    session: Session,
    policy: Policy,
    request_id: str,
    *,
    other_approvals: Iterable[Approval],
    directory: Directory = EMPTY_DIRECTORY,
    now: dt.datetime | None = None,
) -> Outcome:
    """Re-count a pending request when approvals arrive elsewhere (a forge review)."""
    request = _locked(session, request_id)
    if request is None or not request.is_open:
        return Outcome(False, "not pending", request)
    return _count(session, policy, request, directory, other_approvals, None, _now(now), None)


def _slack_approvals(session: Session, request: ApprovalRequestRecord) -> list[Approval]:
    rows = session.exec(
        select(ApprovalDecisionRecord).where(
            ApprovalDecisionRecord.request_id == request.id,
            ApprovalDecisionRecord.decision == "approve",
        )
    ).all()
    return [
        Approval(system=r.actor_system, user=r.actor, sha=r.sha, via="slack", at=r.created_at)
        for r in rows
    ]


def approvals_for(session: Session, subject: str, sha: str) -> list[Approval]:
    """Approvals given in Slack on `subject` at exactly `sha`, for `evaluate()`."""
    rows = session.exec(
        select(ApprovalDecisionRecord)
        .join(
            ApprovalRequestRecord,
            col(ApprovalRequestRecord.id) == col(ApprovalDecisionRecord.request_id),
        )
        .where(
            ApprovalRequestRecord.subject == subject,
            ApprovalDecisionRecord.sha == sha,
            ApprovalDecisionRecord.decision == "approve",
        )
        .order_by(col(ApprovalDecisionRecord.id))
    ).all()
    return [
        Approval(system=r.actor_system, user=r.actor, sha=r.sha, via="slack", at=r.created_at)
        for r in rows
    ]


def rejection_for(session: Session, subject: str, sha: str) -> ApprovalDecisionRecord | None:
    """The reject (with its reason) that decided a request of `subject` at `sha`, if any:
    the check shows it."""
    return session.exec(
        select(ApprovalDecisionRecord)
        .join(
            ApprovalRequestRecord,
            col(ApprovalRequestRecord.id) == col(ApprovalDecisionRecord.request_id),
        )
        .where(
            ApprovalRequestRecord.subject == subject,
            ApprovalRequestRecord.state == RequestState.REJECTED,
            ApprovalDecisionRecord.sha == sha,
            ApprovalDecisionRecord.decision == "reject",
        )
        .order_by(col(ApprovalDecisionRecord.id).desc())
    ).first()


def requests_for(
    session: Session, subject: str, sha: str | None = None
) -> list[ApprovalRequestRecord]:
    query = select(ApprovalRequestRecord).where(ApprovalRequestRecord.subject == subject)
    if sha is not None:
        query = query.where(ApprovalRequestRecord.sha == sha)
    return list(session.exec(query.order_by(col(ApprovalRequestRecord.created_at))).all())


# -- time: expiry, reminders -----------------------------------------------------------


def expire_due(session: Session, now: dt.datetime | None = None) -> list[ApprovalRequestRecord]:
    """Expire pending requests past their deadline. A retro-review that expires is
    escalated (its `state_reason` says so); the caller updates messages and checks."""
    now = _now(now)
    due = session.exec(
        select(ApprovalRequestRecord)
        .where(
            ApprovalRequestRecord.state == RequestState.PENDING,
            col(ApprovalRequestRecord.expires_at) <= now,
        )
        .order_by(col(ApprovalRequestRecord.expires_at))
    ).all()
    for request in due:
        reason = (
            "escalated: the retro-review was not approved in time"
            if request.kind == RequestKind.RETRO_REVIEW
            else "expired without enough approvals"
        )
        _settle(session, request, RequestState.EXPIRED, reason, now)
    return list(due)


def reminders_due(session: Session, now: dt.datetime | None = None) -> list[ApprovalRequestRecord]:
    """Pending requests to nudge once before they expire; marked as reminded. Only those
    whose Slack message is posted: the nudge goes into its thread, and a request whose
    message a worker is still posting is nudged by the next sweep, not marked and lost."""
    now = _now(now)
    due = session.exec(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.state == RequestState.PENDING,
            col(ApprovalRequestRecord.message_ts).is_not(None),
            col(ApprovalRequestRecord.reminded_at).is_(None),
            col(ApprovalRequestRecord.remind_at) <= now,
            col(ApprovalRequestRecord.expires_at) > now,
        )
    ).all()
    for request in due:
        request.reminded_at = now
        session.add(request)
    session.flush()
    return list(due)


# -- break-glass ----------------------------------------------------------------------


@dataclass
class BreakGlassOutcome:
    accepted: bool
    message: str
    record: BreakGlassRecord | None = None
    retro_review: ApprovalRequestRecord | None = None
    overridden: list[ApprovalRequestRecord] = field(default_factory=list)


def break_glass(
    session: Session,
    policy: Policy,
    *,
    subject: str,
    sha: str,
    actor: tuple[str, str],
    reason: str,
    settings: BreakGlassSettings | None = None,
    review_group: str | None = None,
    directory: Directory = EMPTY_DIRECTORY,
    channel: str | None = None,
    delivery_id: str | None = None,
    now: dt.datetime | None = None,
) -> BreakGlassOutcome:
    """An emergency override by a member of the emergency group, with a written reason.

    It takes effect at once: pending requests of `subject` at `sha` are approved, and
    `break_glass_for()` tells gates and the governor. It opens a retro-review request for
    `review_group` (default: the group of the overridden request) that must be approved
    within `retro_review_within`, or `expire_due()` escalates it.
    """
    settings = settings or BreakGlassSettings()
    now = _now(now)
    reason = " ".join(reason.split())
    group = policy.groups.get(settings.group)
    if group is None:
        return BreakGlassOutcome(False, f"The policy defines no `{settings.group}` group.")

    def refused(why: str) -> BreakGlassOutcome:
        audit.append(
            session,
            action="break_glass.refused",
            actor=actor,
            subject=subject,
            sha=sha,
            channel=actor[0],
            delivery_id=delivery_id,
            detail={"why": why, "reason": reason},
            at=now,
        )
        return BreakGlassOutcome(False, why)

    if not is_member(policy, group, *actor, directory):
        return refused(f"Only members of {settings.group} can break glass.")
    if len(reason) < settings.min_reason_length:
        return BreakGlassOutcome(
            False, f"Write why (at least {settings.min_reason_length} characters)."
        )
    asked = requests_for(session, subject, sha)
    if any(
        is_initiator(policy, r, actor, directory)
        for r in asked
        if r.kind != RequestKind.RETRO_REVIEW
    ):
        return refused(SELF_BREAK_GLASS.format(group=settings.group))
    pending = [r for r in asked if r.is_open]
    rules = sorted({rule for r in pending for rule in r.rules})
    review = review_group or (pending[0].group_name if pending else settings.group)
    first = pending[0] if pending else None
    opened = open_request(
        session,
        subject=subject,
        sha=sha,
        group=review,
        rules=[*rules, "break-glass"],
        expires_after=settings.retro_review_delta,
        kind=RequestKind.RETRO_REVIEW,
        author=actor,  # who broke the glass may not review it
        repo=first.repo if first else "",
        number=first.number if first else None,
        title=first.title if first else "",
        url=first.url if first else None,
        environment=first.environment if first else None,
        channel=channel or (first.channel if first else None),
        details={"break_glass_reason": reason, "broken_by": list(actor)},
        parent_id=first.id if first else None,
        delivery_id=delivery_id,
        now=now,
    )
    record = BreakGlassRecord(
        subject=subject,
        sha=sha,
        actor_system=actor[0],
        actor=actor[1],
        reason=reason,
        retro_request_id=opened.request.id,
        created_at=now,
    )
    session.add(record)
    session.flush()
    audit.append(
        session,
        action="break_glass",
        actor=actor,
        subject=subject,
        sha=sha,
        rules=rules,
        channel=actor[0],
        delivery_id=delivery_id,
        decision="approved",
        detail={"reason": reason, "retro_review": opened.request.id},
        at=now,
    )
    for request in pending:
        _settle(
            session,
            request,
            RequestState.APPROVED,
            f"break-glass by {_display(actor)}: {reason}",
            now,
            actor=actor,
            delivery_id=delivery_id,
        )
    return BreakGlassOutcome(
        True,
        f"Break-glass recorded for {_short(sha)}; retro-review by {review} due "
        f"{_fmt(opened.request.expires_at)}.",
        record,
        opened.request,
        pending,
    )


def break_glass_for(session: Session, subject: str, sha: str) -> BreakGlassRecord | None:
    """The override in force for `subject` at `sha`, if any."""
    return session.exec(
        select(BreakGlassRecord)
        .where(BreakGlassRecord.subject == subject, BreakGlassRecord.sha == sha)
        .order_by(col(BreakGlassRecord.id).desc())
    ).first()


# -- deploy gates ---------------------------------------------------------------------


@dataclass
class GateResult:
    decision: GateDecision
    request: ApprovalRequestRecord | None
    created: bool = False


def gate_deploy(
    session: Session,
    policy: Policy,
    *,
    forge: str,
    repo: str,
    environment: str,
    sha: str,
    verdict: str | None,
    initiator: tuple[str, str] | None,
    gate: DeployGate | None = None,
    freeze: list[FreezeWindow] | None = None,
    other_approvals: Iterable[Approval] = (),
    directory: Directory = EMPTY_DIRECTORY,
    delivery_id: str | None = None,
    details: dict[str, Any] | None = None,
    new_run: bool = False,
    now: dt.datetime | None = None,
) -> GateResult:
    """Decide a deploy of `sha` to `environment` under `deploys.<environment>`.

    Opens (idempotently) the deploy's approval request in the gate's group, so a pending
    gate has a Slack message to click; approved and rejected answers are audited. With
    `new_run` (a fresh `deployment_protection_rule` event), an expired request of the
    same SHA is asked again instead of rejecting at once.
    """
    now = _now(now)
    gate = gate or policy.deploys[environment]
    windows = freeze if freeze is not None else list(getattr(gate, "freeze", []) or [])
    subject = deploy_subject(forge, repo, environment)
    glass = break_glass_for(session, subject, sha)
    if glass is not None:
        retro = session.get(ApprovalRequestRecord, glass.retro_request_id)
        decision = decide_gate(
            environment=environment,
            sha=sha,
            verdict=verdict,
            freeze=windows,
            granted=(),
            required=gate.min_approvals,
            group=gate.approvers,
            now=now,
            break_glass=BreakGlassInfo(
                _display((glass.actor_system, glass.actor)),
                glass.reason,
                retro.expires_at if retro else None,
            ),
        )
        _audit_gate(session, subject, sha, decision, delivery_id, now)
        return GateResult(decision, retro)
    if active_freeze(windows, now) is not None:
        # rejected without a request: once the freeze ends, a new run asks for approval
        decision = decide_gate(
            environment=environment,
            sha=sha,
            verdict=verdict,
            freeze=windows,
            granted=(),
            required=gate.min_approvals,
            group=gate.approvers,
            now=now,
        )
        _audit_gate(session, subject, sha, decision, delivery_id, now)
        return GateResult(decision, None)
    rules = [f"deploys.{environment}"] + ([] if verdict == "pass" else [f"verdict:{verdict}"])
    opened = open_request(
        session,
        subject=subject,
        sha=sha,
        group=gate.approvers,
        rules=rules,
        min_approvals=gate.min_approvals,
        expires_after=gate.expires_after_delta,
        kind=RequestKind.DEPLOY,
        author=initiator,
        repo=repo,
        title=f"Deploy {_short(sha)} to {environment}",
        environment=environment,
        channel=gate.slack_channel,
        details={"verdict": verdict, **(details or {})},
        delivery_id=delivery_id,
        reopen_expired=new_run,
        now=now,
    )
    request = opened.request
    _add_initiators(session, request, (details or {}).get("initiators") or [])
    if request.is_open and now >= request.expires_at:
        _settle(session, request, RequestState.EXPIRED, "expired", now)
    approvals = [*_slack_approvals(session, request), *other_approvals]
    counted = tally(
        policy,
        gate.approvers,
        approvals,
        head=sha,
        author=initiator,
        authors=initiators(request),
        directory=directory,
    )
    rejected = rejection_for(session, subject, sha)
    decision = decide_gate(
        environment=environment,
        sha=sha,
        verdict=verdict,
        freeze=windows,
        granted=counted.granted,
        required=gate.min_approvals,
        group=gate.approvers,
        now=now,
        rejected_by=(
            (_display((rejected.actor_system, rejected.actor)), rejected.reason or "")
            if rejected
            else None
        ),
    )
    if decision.state == "pending" and request.state == RequestState.EXPIRED:
        decision = GateDecision(
            "rejected",
            f"The approval request expired at {_fmt(request.decided_at or request.expires_at)}.",
        )
    if decision.state == "approved" and request.is_open:
        _settle(session, request, RequestState.APPROVED, decision.comment, now)
    if decision.state == "rejected" and request.is_open:
        _settle(session, request, RequestState.REJECTED, decision.comment, now)
    if decision.state != "pending":
        _audit_gate(session, subject, sha, decision, delivery_id, now)
    return GateResult(decision, request, opened.created)


def _add_initiators(
    session: Session, request: ApprovalRequestRecord, found: Iterable[Sequence[str]]
) -> None:
    """Another run of the same deploy (same SHA) may have been started by someone else:
    they cannot approve it either."""
    known = [list(i) for i in (request.details or {}).get("initiators") or []]
    added = [list(i) for i in found if list(i) not in known]
    if added:
        request.details = {**(request.details or {}), "initiators": known + added}
        session.add(request)
        session.flush()


def _audit_gate(
    session: Session,
    subject: str,
    sha: str,
    decision: GateDecision,
    delivery_id: str | None,
    now: dt.datetime,
) -> None:
    audit.append(
        session,
        action="deploy.gate",
        subject=subject,
        sha=sha,
        channel="system",
        delivery_id=delivery_id,
        decision=decision.state,
        detail={"comment": decision.comment},
        at=now,
    )
