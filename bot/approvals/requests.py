"""Approval requests and their life: opened, superseded, settled, expired, reminded.

A request belongs to one subject (a pull request, or deploys of a repository to one
environment) at one SHA, one group, and the rules that asked. It is `pending`, then
`approved`, `rejected`, `expired` or `superseded` (a newer SHA arrived, or the change
now targets another base). Who may decide it is `bot.approvals.decisions`' business.

Everything here runs in the caller's session and transaction (flushed, not committed),
and every state change is appended to the audit log in that same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import audit
from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.store import utcnow

#: a reminder goes out this long before expiry, at most
REMINDER_LEAD = dt.timedelta(hours=1)


def change_subject(forge: str, repo: str, number: int) -> str:
    """The subject of a pull/merge request: `github:acme/app#12`."""
    return f"{forge}:{repo}#{number}"


def deploy_subject(forge: str, repo: str, environment: str) -> str:
    """The subject of deploys of a repository to one environment: `github:acme/app@production`."""
    return f"{forge}:{repo}@{environment}"


def utc_naive(now: dt.datetime | None) -> dt.datetime:
    """`now` (or the current time) as the store keeps times: naive UTC."""
    if now is None:
        return utcnow()
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def fmt_time(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


def short_sha(sha: str) -> str:
    return sha[:7]


def display(actor: tuple[str, str]) -> str:
    """Plain text (it also reaches forge checks): `U0ALICE (slack)`, `alice (github)`."""
    return f"{actor[1]} ({actor[0]})"


@dataclass(frozen=True)
class Stamp:
    """When a request changed, who changed it and the delivery that asked: the audit log's
    record of the change."""

    at: dt.datetime
    actor: tuple[str, str] | None = None
    delivery_id: str | None = None


# -- opening and superseding -----------------------------------------------------------


@dataclass(frozen=True)
class RequestSpec:
    """What a request asks, of whom, about what: everything `open_request` stores."""

    subject: str
    sha: str
    group: str
    rules: Sequence[str]
    expires_after: dt.timedelta
    min_approvals: int = 1
    basis: str = ""
    kind: RequestKind = RequestKind.CHANGE
    author: tuple[str, str] | None = None
    repo: str = ""
    number: int | None = None
    title: str = ""
    url: str | None = None
    environment: str | None = None
    channel: str | None = None
    details: dict[str, Any] | None = None
    parent_id: str | None = None


@dataclass
class Opened:
    request: ApprovalRequestRecord
    created: bool
    superseded: list[ApprovalRequestRecord] = field(default_factory=list)


def open_request(
    session: Session,
    spec: RequestSpec,
    *,
    delivery_id: str | None = None,
    reopen_expired: bool = False,
    now: dt.datetime | None = None,
) -> Opened:
    """Open (or find) the request of `spec.group` for `spec.subject` at `spec.sha`.

    Idempotent: a second call for the same subject, SHA, group and kind returns the first
    request (with the rules brought up to date). Pending requests of the same subject and
    kind at another SHA are superseded; the caller updates their Slack messages. A
    superseded request whose SHA is the head again (a force-push back) is reopened, an
    expired one only with `reopen_expired`. `created` means: post a (new) Slack message.
    A request binds to the base the change was shown against too (`basis`): retargeting
    the change supersedes it like a new commit does.
    """
    stamp = Stamp(utc_naive(now), delivery_id=delivery_id)
    superseded = _supersede(session, spec.subject, spec.sha, spec.kind, stamp, spec.basis)
    existing = session.exec(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.subject == spec.subject,
            ApprovalRequestRecord.sha == spec.sha,
            ApprovalRequestRecord.basis == spec.basis,
            ApprovalRequestRecord.group_name == spec.group,
            ApprovalRequestRecord.kind == str(spec.kind),
        )
    ).first()
    if existing is None:
        request = _new_request(spec, stamp.at)
        session.add(request)
        session.flush()
        audit_request(session, request, "approval.requested", stamp)
        return Opened(request, created=True, superseded=superseded)
    revive = existing.state == RequestState.SUPERSEDED or (
        reopen_expired and existing.state == RequestState.EXPIRED
    )
    if revive:  # the head went back to this SHA (or a new deploy run asks again)
        _reopen(existing, spec, stamp.at)
    if existing.is_open:
        existing.rules = sorted(set(spec.rules))
    session.add(existing)
    session.flush()
    if revive:
        audit_request(session, existing, "approval.reopened", stamp)
    return Opened(existing, created=revive, superseded=superseded)


def _remind_at(expires_at: dt.datetime, expires_after: dt.timedelta) -> dt.datetime:
    return expires_at - min(expires_after / 4, REMINDER_LEAD)


def _new_request(spec: RequestSpec, now: dt.datetime) -> ApprovalRequestRecord:
    expires_at = now + spec.expires_after
    return ApprovalRequestRecord(
        id=uuid.uuid4().hex,
        kind=str(spec.kind),
        subject=spec.subject,
        sha=spec.sha,
        basis=spec.basis,
        group_name=spec.group,
        rules=sorted(set(spec.rules)),
        min_approvals=spec.min_approvals,
        author_system=spec.author[0] if spec.author else None,
        author=spec.author[1] if spec.author else None,
        state=RequestState.PENDING,
        repo=spec.repo,
        number=spec.number,
        title=spec.title,
        url=spec.url,
        environment=spec.environment,
        channel=spec.channel,
        details=audit._jsonable(spec.details or {}),
        parent_id=spec.parent_id,
        created_at=now,
        expires_at=expires_at,
        remind_at=_remind_at(expires_at, spec.expires_after),
    )


def _reopen(request: ApprovalRequestRecord, spec: RequestSpec, now: dt.datetime) -> None:
    """Pending again, with a new deadline and no message yet (a new one is posted)."""
    request.state, request.state_reason = RequestState.PENDING, None
    request.decided_at = request.decided_by = request.decided_by_system = None
    request.expires_at = now + spec.expires_after
    request.remind_at = _remind_at(request.expires_at, spec.expires_after)
    request.reminded_at = request.message_ts = None
    request.channel = spec.channel or request.channel


def _supersede(
    session: Session,
    subject: str,
    sha: str,
    kind: RequestKind,
    stamp: Stamp,
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
        settle(
            session,
            request,
            RequestState.SUPERSEDED,
            f"superseded: the change now targets {basis.split('@', 1)[0] or 'another base'}"
            if retargeted and basis is not None
            else f"superseded by {short_sha(sha)}: a newer commit arrived",
            stamp,
            detail={"new_sha": sha, "new_basis": basis} if retargeted else {"new_sha": sha},
        )
    return list(stale)


def supersede(
    session: Session,
    subject: str,
    new_sha: str,
    *,
    basis: str | None = None,
    delivery_id: str | None = None,
    now: dt.datetime | None = None,
) -> list[ApprovalRequestRecord]:
    """Supersede the pending change requests of `subject` at any SHA but `new_sha` (a push
    that needs no approval at all must still retire the old request), or at any base but
    `basis`."""
    stamp = Stamp(utc_naive(now), delivery_id=delivery_id)
    return _supersede(session, subject, new_sha, RequestKind.CHANGE, stamp, basis)


# -- settling, auditing, finding ---------------------------------------------------------


def settle(
    session: Session,
    request: ApprovalRequestRecord,
    state: RequestState,
    reason: str,
    stamp: Stamp,
    detail: dict[str, Any] | None = None,
) -> None:
    """Move `request` to `state` for `reason`, and audit it."""
    request.state = state
    request.state_reason = reason
    request.decided_at = stamp.at
    if stamp.actor is not None:
        request.decided_by_system, request.decided_by = stamp.actor
    session.add(request)
    session.flush()
    audit_request(
        session, request, f"approval.{state}", stamp, {"reason": reason, **(detail or {})}
    )


def audit_request(
    session: Session,
    request: ApprovalRequestRecord,
    action: str,
    stamp: Stamp,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append `action` on `request` to the audit log, in the caller's transaction."""
    actor = stamp.actor
    audit.append(
        session,
        audit.Entry(
            action=action,
            actor=actor,
            subject=request.subject,
            sha=request.sha,
            rules=request.rules,
            channel="slack" if actor and actor[0] == "slack" else (actor[0] if actor else "system"),
            delivery_id=stamp.delivery_id,
            decision=str(request.state),
            detail={"request": request.id, "group": request.group_name, **(detail or {})},
            at=stamp.at,
        ),
    )


def get_request(session: Session, request_id: str) -> ApprovalRequestRecord | None:
    return session.get(ApprovalRequestRecord, request_id)


def lock_request(session: Session, request_id: str) -> ApprovalRequestRecord | None:
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


# -- time: expiry, reminders -----------------------------------------------------------


def expire_due(session: Session, now: dt.datetime | None = None) -> list[ApprovalRequestRecord]:
    """Expire pending requests past their deadline. A retro-review that expires is
    escalated (its `state_reason` says so); the caller updates messages and checks."""
    stamp = Stamp(utc_naive(now))
    due = session.exec(
        select(ApprovalRequestRecord)
        .where(
            ApprovalRequestRecord.state == RequestState.PENDING,
            col(ApprovalRequestRecord.expires_at) <= stamp.at,
        )
        .order_by(col(ApprovalRequestRecord.expires_at))
    ).all()
    for request in due:
        reason = (
            "escalated: the retro-review was not approved in time"
            if request.kind == RequestKind.RETRO_REVIEW
            else "expired without enough approvals"
        )
        settle(session, request, RequestState.EXPIRED, reason, stamp)
    return list(due)


def reminders_due(session: Session, now: dt.datetime | None = None) -> list[ApprovalRequestRecord]:
    """Pending requests to nudge once before they expire; marked as reminded. Only those
    whose Slack message is posted: the nudge goes into its thread, and a request whose
    message a worker is still posting is nudged by the next sweep, not marked and lost."""
    now = utc_naive(now)
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
