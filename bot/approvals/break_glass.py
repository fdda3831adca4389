"""Break-glass: an emergency override by a member of the emergency group, with a reason.

It takes effect at once (the pending requests of the subject at that SHA are approved,
and `queries.break_glass_for()` tells gates and the governor) and opens a retro-review
request that must be approved within `retro_review_within`, or `expire_due()` escalates
it. Nobody breaks glass on their own change or deploy. Refusals are audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from sqlmodel import Session

from bot import audit
from bot.approvals.decisions import is_initiator
from bot.approvals.models import (
    ApprovalRequestRecord,
    BreakGlassRecord,
    RequestKind,
    RequestState,
)
from bot.approvals.queries import requests_for
from bot.approvals.requests import (
    RequestSpec,
    Stamp,
    display,
    fmt_time,
    open_request,
    settle,
    short_sha,
    utc_naive,
)
from bot.policy.approvers import EMPTY_DIRECTORY, Directory, is_member
from bot.policy.freeze import BreakGlassSettings
from bot.policy.schema import Policy

#: the reply to an author or initiator who tries to break glass on their own change
SELF_BREAK_GLASS = (
    "You made this change or started this deploy, so you cannot break glass on it: "
    "ask another member of {group}."
)


@dataclass(frozen=True)
class BreakGlass:
    """Someone asking to override the requests of `subject` at `sha`, and why.

    The retro-review goes to `review_group` (default: the overridden request's group) and
    is posted in `channel` (default: the overridden request's)."""

    subject: str
    sha: str
    actor: tuple[str, str]
    reason: str
    review_group: str | None = None
    channel: str | None = None
    delivery_id: str | None = None


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
    glass: BreakGlass,
    *,
    settings: BreakGlassSettings | None = None,
    directory: Directory = EMPTY_DIRECTORY,
    now: dt.datetime | None = None,
) -> BreakGlassOutcome:
    """Override now if `glass.actor` may, opening the retro-review; else say why not."""
    settings = settings or BreakGlassSettings()
    glass = replace(glass, reason=" ".join(glass.reason.split()))
    stamp = Stamp(utc_naive(now), glass.actor, glass.delivery_id)
    group = policy.groups.get(settings.group)
    if group is None:
        return BreakGlassOutcome(False, f"The policy defines no `{settings.group}` group.")
    if not is_member(policy, group, *glass.actor, directory):
        return _refused(session, glass, stamp, f"Only members of {settings.group} can break glass.")
    if len(glass.reason) < settings.min_reason_length:
        return BreakGlassOutcome(
            False, f"Write why (at least {settings.min_reason_length} characters)."
        )
    asked = requests_for(session, glass.subject, glass.sha)
    if any(
        is_initiator(policy, r, glass.actor, directory)
        for r in asked
        if r.kind != RequestKind.RETRO_REVIEW
    ):
        return _refused(session, glass, stamp, SELF_BREAK_GLASS.format(group=settings.group))
    pending = [r for r in asked if r.is_open]
    review = glass.review_group or (pending[0].group_name if pending else settings.group)
    retro = _open_retro_review(session, glass, pending, review, settings, stamp)
    record = _record(session, glass, retro, stamp, sorted({x for r in pending for x in r.rules}))
    for request in pending:
        label = f"break-glass by {display(glass.actor)}: {glass.reason}"
        settle(session, request, RequestState.APPROVED, label, stamp)
    return BreakGlassOutcome(
        True,
        f"Break-glass recorded for {short_sha(glass.sha)}; retro-review by {review} due "
        f"{fmt_time(retro.expires_at)}.",
        record,
        retro,
        pending,
    )


def _refused(session: Session, glass: BreakGlass, stamp: Stamp, why: str) -> BreakGlassOutcome:
    audit.append(
        session,
        audit.Entry(
            action="break_glass.refused",
            actor=glass.actor,
            subject=glass.subject,
            sha=glass.sha,
            channel=glass.actor[0],
            delivery_id=glass.delivery_id,
            detail={"why": why, "reason": glass.reason},
            at=stamp.at,
        ),
    )
    return BreakGlassOutcome(False, why)


def _open_retro_review(
    session: Session,
    glass: BreakGlass,
    pending: list[ApprovalRequestRecord],
    review_group: str,
    settings: BreakGlassSettings,
    stamp: Stamp,
) -> ApprovalRequestRecord:
    """The retro-review request, about what the first overridden request was about; who
    broke the glass is its author, so they may not review it."""
    first = pending[0] if pending else None
    spec = RequestSpec(
        subject=glass.subject,
        sha=glass.sha,
        group=review_group,
        rules=[*sorted({rule for r in pending for rule in r.rules}), "break-glass"],
        expires_after=settings.retro_review_delta,
        kind=RequestKind.RETRO_REVIEW,
        author=glass.actor,
        repo=first.repo if first else "",
        number=first.number if first else None,
        title=first.title if first else "",
        url=first.url if first else None,
        environment=first.environment if first else None,
        channel=glass.channel or (first.channel if first else None),
        details={"break_glass_reason": glass.reason, "broken_by": list(glass.actor)},
        parent_id=first.id if first else None,
    )
    return open_request(session, spec, delivery_id=glass.delivery_id, now=stamp.at).request


def _record(
    session: Session,
    glass: BreakGlass,
    retro: ApprovalRequestRecord,
    stamp: Stamp,
    rules: list[str],
) -> BreakGlassRecord:
    """The override in force (`break_glass_for`), and its audit entry."""
    record = BreakGlassRecord(
        subject=glass.subject,
        sha=glass.sha,
        actor_system=glass.actor[0],
        actor=glass.actor[1],
        reason=glass.reason,
        retro_request_id=retro.id,
        created_at=stamp.at,
    )
    session.add(record)
    session.flush()
    audit.append(
        session,
        audit.Entry(
            action="break_glass",
            actor=glass.actor,
            subject=glass.subject,
            sha=glass.sha,
            rules=rules,
            channel=glass.actor[0],
            delivery_id=glass.delivery_id,
            decision="approved",
            detail={"reason": glass.reason, "retro_review": retro.id},
            at=stamp.at,
        ),
    )
    return record
