"""Break-glass: members of the emergency group only, with a reason; it approves at once and
opens a retro-review that escalates if nobody approves it in time."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.approvals.break_glass import BreakGlass, break_glass
from bot.approvals.decisions import Ballot, record_decision
from bot.approvals.models import RequestKind, RequestState
from bot.approvals.queries import break_glass_for
from bot.approvals.requests import (
    expire_due,
)
from bot.policy.freeze import BreakGlassSettings
from bot.policy.schema import Policy

from .conftest import SHA1, SUBJECT, T0, open_change


def test_break_glass_takes_effect_and_opens_a_retro_review(
    session: Session, policy: Policy
) -> None:
    request = open_change(session).request
    refused = break_glass(
        session,
        policy,
        BreakGlass(
            subject=SUBJECT, sha=SHA1, actor=("slack", "U0ALICE"), reason="prod is down, hotfix"
        ),
        now=T0,
    )
    assert not refused.accepted and "Only members of emergency" in refused.message
    terse = break_glass(
        session,
        policy,
        BreakGlass(subject=SUBJECT, sha=SHA1, actor=("slack", "U0OPS"), reason="x"),
        now=T0,
    )
    assert not terse.accepted and "at least 10 characters" in terse.message
    done = break_glass(
        session,
        policy,
        BreakGlass(
            subject=SUBJECT,
            sha=SHA1,
            actor=("slack", "U0OPS"),
            reason="checkout is down, hotfix INC-4411",
        ),
        now=T0,
        settings=BreakGlassSettings(retro_review_within="8h"),
    )
    assert done.accepted
    assert request.state == RequestState.APPROVED
    assert "break-glass by U0OPS (slack)" in (request.state_reason or "")
    retro = done.retro_review
    assert retro is not None and retro.kind == RequestKind.RETRO_REVIEW
    assert retro.group_name == "senior" and retro.state == RequestState.PENDING
    assert retro.expires_at == T0 + dt.timedelta(hours=8)
    assert retro.parent_id == request.id
    assert break_glass_for(session, SUBJECT, SHA1) is not None
    # who broke the glass may not review it
    own = record_decision(
        session, policy, Ballot(retro.id, SHA1, ("slack", "U0OPS"), "approve"), now=T0
    )
    assert not own.accepted
    escalated = expire_due(session, T0 + dt.timedelta(hours=8))
    assert [r.id for r in escalated] == [retro.id]
    assert (retro.state_reason or "").startswith("escalated")
