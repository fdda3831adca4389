"""Deciding a request: who may, and what an approve or a reject does to it.

Only a pending request at the SHA the button names can be decided, only by a member of
its group, never by the change's author or the deploy's initiators; every refusal comes
with a sentence a Slack reply can show. Approvals given here are handed to `evaluate()`
as `Approval(system="slack")`, where they add up with the forge's own approvals.

Everything runs in the caller's session and transaction, audited like `requests`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, select

from bot.approvals.models import (
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
    RequestKind,
    RequestState,
)
from bot.approvals.queries import approvals_of
from bot.approvals.requests import (
    Stamp,
    audit_request,
    display,
    fmt_time,
    lock_request,
    settle,
    short_sha,
    utc_naive,
)
from bot.change import Approval
from bot.policy.approvers import (
    EMPTY_DIRECTORY,
    ApprovalTerms,
    Directory,
    Tally,
    is_member,
    person_key,
    tally,
)
from bot.policy.schema import Policy

DecisionKind = Literal["approve", "reject"]


@dataclass(frozen=True)
class Ballot:
    """One person's approve or reject of one request, at the SHA their button names (not
    the request's: a click on a message about an older commit never approves a newer one)."""

    request_id: str
    sha: str
    actor: tuple[str, str]
    decision: DecisionKind = "approve"
    reason: str = ""
    delivery_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of a click. `accepted` False: `message` says why, for the clicker."""

    accepted: bool
    message: str
    request: ApprovalRequestRecord | None = None
    settled: bool = False  # the request left `pending` because of this decision
    approvers: tuple[str, ...] = ()


def initiators(request: ApprovalRequestRecord) -> list[tuple[str, str]]:
    """Everyone who set the request's subject in motion: its author, and for a deploy
    the people behind it (`details["initiators"]`: the workflow run's actor, the pull
    request authors of the SHA...), not only the bot account that created it."""
    found = [(request.author_system, request.author)] if request.author_system else []
    for entry in (request.details or {}).get("initiators") or []:
        if isinstance(entry, list | tuple) and len(entry) == 2 and all(entry):
            found.append((str(entry[0]), str(entry[1])))
    return [(str(s), str(u)) for s, u in found if s and u]


def is_initiator(
    policy: Policy,
    request: ApprovalRequestRecord,
    actor: tuple[str, str],
    directory: Directory = EMPTY_DIRECTORY,
) -> bool:
    me = person_key(policy, *actor, directory)
    return any(me == person_key(policy, *who, directory) for who in initiators(request))


def _not_current(request: ApprovalRequestRecord, sha: str) -> str | None:
    """Why a click on this request cannot count, or None."""
    if sha != request.sha:
        return (
            f"This button names commit {short_sha(sha)}, but the request is about "
            f"{short_sha(request.sha)}; nothing was recorded."
        )
    if request.state == RequestState.SUPERSEDED:
        return (
            f"This request is out of date: it was for commit {short_sha(request.sha)} and "
            f"{request.state_reason or 'a newer commit arrived'}. Decide on the newest "
            "request instead."
        )
    if request.state == RequestState.EXPIRED:
        when = fmt_time(request.decided_at or request.expires_at)
        return f"This request expired at {when} without enough approvals."
    if request.state in (RequestState.APPROVED, RequestState.REJECTED):
        when = f" at {fmt_time(request.decided_at)}" if request.decided_at else ""
        return f"This request was already {request.state}{when}: {request.state_reason}."
    return None


def refusal(
    session: Session,
    policy: Policy,
    request: ApprovalRequestRecord,
    ballot: Ballot,
    *,
    directory: Directory = EMPTY_DIRECTORY,
    now: dt.datetime | None = None,
) -> str | None:
    """Why `ballot.actor` may not decide `request` at `ballot.sha` now, or None if they may.

    Also usable before opening the reject-reason modal, so a non-member is told at once.
    A pending request past its deadline is expired here.
    """
    now = utc_naive(now)
    actor = ballot.actor
    if request.is_open and now >= request.expires_at:
        stamp = Stamp(now, delivery_id=ballot.delivery_id)
        settle(session, request, RequestState.EXPIRED, "expired", stamp)
    why = _not_current(request, ballot.sha)
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
    ballot: Ballot,
    *,
    directory: Directory = EMPTY_DIRECTORY,
    other_approvals: Iterable[Approval] = (),
    now: dt.datetime | None = None,
) -> Outcome:
    """Record `ballot` (an approve or a reject of a request), or refuse it with a reason.

    `other_approvals` are approvals granted elsewhere (approving reviews on the forge)
    that count toward `min_approvals` too. One reject rejects the request.
    """
    stamp = Stamp(utc_naive(now), ballot.actor, ballot.delivery_id)
    request = lock_request(session, ballot.request_id)
    if request is None:
        return Outcome(False, "This approval request does not exist (any more).")
    why = refusal(session, policy, request, ballot, directory=directory, now=stamp.at)
    if why is not None:
        detail = {"clicked": ballot.decision, "clicked_sha": ballot.sha, "why": why}
        audit_request(session, request, "approval.refused", stamp, detail)
        return Outcome(False, why, request)
    session.add(
        ApprovalDecisionRecord(
            request_id=request.id,
            sha=ballot.sha,
            actor_system=ballot.actor[0],
            actor=ballot.actor[1],
            person=person_key(policy, *ballot.actor, directory),
            decision=ballot.decision,
            reason=ballot.reason or None,
            delivery_id=ballot.delivery_id,
            created_at=stamp.at,
        )
    )
    session.flush()
    reason = ballot.reason
    audit_request(
        session,
        request,
        f"approval.{ballot.decision}",
        stamp,
        {"reason": reason} if reason else None,
    )
    if ballot.decision == "reject":
        label = f"rejected by {display(ballot.actor)}" + (f": {reason}" if reason else "")
        settle(session, request, RequestState.REJECTED, label, Stamp(stamp.at, ballot.actor))
        return Outcome(True, f"You rejected this request ({short_sha(ballot.sha)}).", request, True)
    counted = _tally(session, policy, request, directory, other_approvals)
    return _conclude(session, request, counted, stamp)


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
    request = lock_request(session, request_id)
    if request is None or not request.is_open:
        return Outcome(False, "not pending", request)
    counted = _tally(session, policy, request, directory, other_approvals)
    return _conclude(session, request, counted, Stamp(utc_naive(now)))


def _tally(
    session: Session,
    policy: Policy,
    request: ApprovalRequestRecord,
    directory: Directory,
    other_approvals: Iterable[Approval],
) -> Tally:
    """Who counts toward the request: its Slack approvals and `other_approvals`."""
    return tally(
        policy,
        request.group_name,
        [*approvals_of(session, request), *other_approvals],
        ApprovalTerms(head=request.sha, author=None, authors=initiators(request)),
        directory=directory,
    )


def _conclude(
    session: Session, request: ApprovalRequestRecord, counted: Tally, stamp: Stamp
) -> Outcome:
    """Approve the request if enough people count; else say where the count stands (and
    why the clicker's own approval does not count, if it does not)."""
    granted = len(counted.granted)
    if granted >= request.min_approvals:
        reason = f"approved by {', '.join(counted.granted)}"
        settle(session, request, RequestState.APPROVED, reason, stamp)
        return Outcome(
            True, f"Approved ({granted}/{request.min_approvals}).", request, True, counted.granted
        )
    mine = display(stamp.actor) if stamp.actor else None
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
