"""Deploy gates against the store: a request in the gate's group, freeze windows, break-glass,
expiry and a new run asking again."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.approvals.break_glass import BreakGlass, break_glass
from bot.approvals.decisions import Ballot, record_decision
from bot.approvals.deploys import DeployRun, GateResult, gate_deploy
from bot.approvals.models import RequestKind, RequestState
from bot.approvals.requests import (
    deploy_subject,
)
from bot.policy.freeze import FreezeWindow
from bot.policy.schema import Policy

from .conftest import T0
from policy.test_freeze import WEEKEND

SHA = "3333333333333333333333333333333333333333"


def gate(
    session: Session,
    policy: Policy,
    now: dt.datetime,
    *,
    freeze: list[FreezeWindow] | None = None,
    new_run: bool = False,
) -> GateResult:
    """bob's deploy of SHA to production (which passed changegate), under the policy's
    gate or, with `freeze`, the same gate with those freeze windows."""
    production = policy.deploys["production"]
    if freeze is not None:
        production = production.model_copy(update={"freeze": freeze})
    run = DeployRun(
        forge="github",
        repo="acme/app",
        environment="production",
        sha=SHA,
        verdict="pass",
        initiator=("github", "bob"),
        new_run=new_run,
    )
    return gate_deploy(session, policy, run, gate=production, now=now)


def test_deploy_gate_waits_for_a_senior_then_approves(session: Session, policy: Policy) -> None:
    first = gate(session, policy, T0)
    assert first.decision.state == "pending" and first.created
    request = first.request
    assert request is not None and request.kind == RequestKind.DEPLOY
    assert request.channel == "C0DEPLOYS" and request.rules == ["deploys.production"]
    bob = record_decision(
        session, policy, Ballot(request.id, SHA, ("slack", "U0BOB"), "approve"), now=T0
    )
    assert not bob.accepted and "You started this deploy" in bob.message
    alice = record_decision(
        session, policy, Ballot(request.id, SHA, ("slack", "U0ALICE"), "approve"), now=T0
    )
    assert alice.settled
    again = gate(session, policy, T0 + dt.timedelta(minutes=1))
    assert (
        again.decision.state == "approved"
        and "approved by U0ALICE (slack)" in again.decision.comment
    )


def test_deploy_in_a_freeze_window_is_rejected(session: Session, policy: Policy) -> None:
    friday_evening = dt.datetime(2024, 6, 7, 15, 0)  # 17:00 in Berlin
    result = gate(session, policy, friday_evening, freeze=[WEEKEND])
    assert result.decision.state == "rejected"
    assert "freeze window friday-evening" in result.decision.comment
    assert result.request is None


def test_break_glass_approves_a_frozen_deploy_and_opens_a_retro_review(
    session: Session, policy: Policy
) -> None:
    friday_evening = dt.datetime(2024, 6, 7, 15, 0)
    pending = gate(session, policy, friday_evening - dt.timedelta(hours=3), freeze=[WEEKEND])
    assert pending.decision.state == "pending"
    subject = deploy_subject("github", "acme/app", "production")
    glass = break_glass(
        session,
        policy,
        BreakGlass(
            subject=subject,
            sha=SHA,
            actor=("slack", "U0OPS"),
            reason="payments outage, rollback INC-7",
        ),
        now=friday_evening,
    )
    assert glass.accepted and glass.retro_review is not None
    result = gate(session, policy, friday_evening, freeze=[WEEKEND])
    assert result.decision.state == "approved"
    assert (
        "Break-glass by U0OPS (slack): payments outage, rollback INC-7" in result.decision.comment
    )
    assert "retro-review due 2024-06-08 15:00 UTC" in result.decision.comment
    assert pending.request is not None and pending.request.state == RequestState.APPROVED
    assert glass.retro_review.state == RequestState.PENDING


def test_expired_deploy_request_is_asked_again_on_a_new_run(
    session: Session, policy: Policy
) -> None:
    first = gate(session, policy, T0)
    assert first.request is not None
    late = gate(session, policy, T0 + dt.timedelta(hours=5))
    assert late.decision.state == "rejected" and "expired" in late.decision.comment
    again = gate(session, policy, T0 + dt.timedelta(hours=6), new_run=True)
    assert again.decision.state == "pending" and again.created
    assert again.request is not None and again.request.id == first.request.id
