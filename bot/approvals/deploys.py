"""A deploy asking its gate (`deploys.<environment>`): break-glass, freeze, then people.

`gate_deploy` opens (idempotently) the deploy's approval request in the gate's group, so a
pending gate has a Slack message to click, and decides with `freeze.decide_gate`; approved
and rejected answers are audited. Only approvals given on the request count: approving
reviews on the forge are about the change, not about deploying it, so they never count
for a deploy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot import audit
from bot.approvals.decisions import initiators
from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.approvals.queries import approvals_of, break_glass_for, rejection_for
from bot.approvals.requests import (
    Opened,
    RequestSpec,
    Stamp,
    deploy_subject,
    display,
    fmt_time,
    open_request,
    settle,
    short_sha,
    utc_naive,
)
from bot.policy.approvers import EMPTY_DIRECTORY, ApprovalTerms, Directory, tally
from bot.policy.freeze import (
    BreakGlassInfo,
    GateDecision,
    GateFacts,
    active_freeze,
    decide_gate,
)
from bot.policy.schema import DeployGate, Policy


@dataclass(frozen=True)
class DeployRun:
    """One deployment of `sha` to `environment` waiting on its gate.

    `verdict` is the SHA's last changegate decision (None: never checked); `initiator`
    started it, and `details["initiators"]` names everyone behind it (none may approve).
    `new_run` (a fresh `deployment_protection_rule` event) asks an expired request of the
    same SHA again instead of rejecting at once."""

    forge: str
    repo: str
    environment: str
    sha: str
    verdict: str | None
    initiator: tuple[str, str] | None
    details: dict[str, Any] | None = None
    new_run: bool = False
    delivery_id: str | None = None

    @property
    def subject(self) -> str:
        return deploy_subject(self.forge, self.repo, self.environment)


@dataclass
class GateResult:
    decision: GateDecision
    request: ApprovalRequestRecord | None
    created: bool = False


def gate_deploy(
    session: Session,
    policy: Policy,
    run: DeployRun,
    *,
    gate: DeployGate | None = None,
    directory: Directory = EMPTY_DIRECTORY,
    now: dt.datetime | None = None,
) -> GateResult:
    """Decide `run` under `gate` (default: the policy's `deploys.<environment>`)."""
    now = utc_naive(now)
    gate = gate or policy.deploys[run.environment]
    glass = break_glass_for(session, run.subject, run.sha)
    if glass is not None:
        retro = session.get(ApprovalRequestRecord, glass.retro_request_id)
        info = BreakGlassInfo(
            display((glass.actor_system, glass.actor)),
            glass.reason,
            retro.expires_at if retro else None,
        )
        decision = decide_gate(_facts(run, gate, now, break_glass=info))
        _audit_gate(session, run, decision, now)
        return GateResult(decision, retro)
    if active_freeze(list(gate.freeze), now) is not None:
        # rejected without a request: once the freeze ends, a new run asks for approval
        decision = decide_gate(_facts(run, gate, now))
        _audit_gate(session, run, decision, now)
        return GateResult(decision, None)
    opened = _open(session, run, gate, now)
    request = opened.request
    facts = _facts(
        run,
        gate,
        now,
        granted=_granted(session, policy, gate, run, request, directory),
        rejected_by=_rejected_by(session, run),
    )
    decision = decide_gate(facts)
    if decision.state == "pending" and request.state == RequestState.EXPIRED:
        when = fmt_time(request.decided_at or request.expires_at)
        decision = GateDecision("rejected", f"The approval request expired at {when}.")
    if decision.state == "approved" and request.is_open:
        settle(session, request, RequestState.APPROVED, decision.comment, Stamp(now))
    if decision.state == "rejected" and request.is_open:
        settle(session, request, RequestState.REJECTED, decision.comment, Stamp(now))
    if decision.state != "pending":
        _audit_gate(session, run, decision, now)
    return GateResult(decision, request, opened.created)


def _facts(
    run: DeployRun,
    gate: DeployGate,
    now: dt.datetime,
    *,
    granted: tuple[str, ...] = (),
    rejected_by: tuple[str, str] | None = None,
    break_glass: BreakGlassInfo | None = None,
) -> GateFacts:
    return GateFacts(
        environment=run.environment,
        sha=run.sha,
        verdict=run.verdict,
        freeze=list(gate.freeze),
        granted=granted,
        required=gate.min_approvals,
        group=gate.approvers,
        now=now,
        rejected_by=rejected_by,
        break_glass=break_glass,
    )


def _open(session: Session, run: DeployRun, gate: DeployGate, now: dt.datetime) -> Opened:
    """The deploy's request in the gate's group (opened, found or asked again), knowing
    everyone who started a run of it; expired here if past its deadline."""
    rules = [f"deploys.{run.environment}"]
    if run.verdict != "pass":
        rules.append(f"verdict:{run.verdict}")
    spec = RequestSpec(
        subject=run.subject,
        sha=run.sha,
        group=gate.approvers,
        rules=rules,
        min_approvals=gate.min_approvals,
        expires_after=gate.expires_after_delta,
        kind=RequestKind.DEPLOY,
        author=run.initiator,
        repo=run.repo,
        title=f"Deploy {short_sha(run.sha)} to {run.environment}",
        environment=run.environment,
        channel=gate.slack_channel,
        details={"verdict": run.verdict, **(run.details or {})},
    )
    opened = open_request(
        session, spec, delivery_id=run.delivery_id, reopen_expired=run.new_run, now=now
    )
    request = opened.request
    _add_initiators(session, request, (run.details or {}).get("initiators") or [])
    if request.is_open and now >= request.expires_at:
        settle(session, request, RequestState.EXPIRED, "expired", Stamp(now))
    return opened


def _granted(
    session: Session,
    policy: Policy,
    gate: DeployGate,
    run: DeployRun,
    request: ApprovalRequestRecord,
    directory: Directory,
) -> tuple[str, ...]:
    """Who counts toward the gate: approvals given on the request, by members of the
    gate's group who started no run of this deploy."""
    counted = tally(
        policy,
        gate.approvers,
        approvals_of(session, request),
        ApprovalTerms(head=run.sha, author=run.initiator, authors=initiators(request)),
        directory=directory,
    )
    return counted.granted


def _rejected_by(session: Session, run: DeployRun) -> tuple[str, str] | None:
    """(who, reason) of the reject in Slack that decided this deploy, if any."""
    rejected = rejection_for(session, run.subject, run.sha)
    if rejected is None:
        return None
    return display((rejected.actor_system, rejected.actor)), rejected.reason or ""


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


def _audit_gate(session: Session, run: DeployRun, decision: GateDecision, now: dt.datetime) -> None:
    audit.append(
        session,
        audit.Entry(
            action="deploy.gate",
            subject=run.subject,
            sha=run.sha,
            channel="system",
            delivery_id=run.delivery_id,
            decision=decision.state,
            detail={"comment": decision.comment},
            at=now,
        ),
    )
