"""Deploy gates: a deployment waits until `deploys.<environment>` says it may go.

Both forges ask in their own way and are answered in their own way:

- GitHub: a `deployment_protection_rule` event; answered through the run's
  deployment-protection-rule endpoint (`approved` / `rejected` with a comment).
- GitLab: a pipeline whose deploy job waits as a manual job (played once approved, by the
  bot's token; the audit log records the human who approved it), or a `blocked`
  deployment on Premium (approved or rejected through the deployment approvals API). A
  deployment that is already `running` cannot be held: whether it had its approval is
  written to the audit log.

The decision itself is `deploys.gate_deploy()`: break-glass first, then freeze windows,
a rejection in Slack, and the approvals of the gate's group (the SHA's last changegate
verdict only changes what the comment says: a gate always needs its approvals). A gate
that is still pending is remembered on its request (`details["waiting"]`) and answered
when a Slack click, a break-glass or the expiry sweep decides it (`resume()`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import audit, inbox, store
from bot.approvals import queries, requests
from bot.approvals.deploys import DeployRun, gate_deploy
from bot.approvals.models import ApprovalRequestRecord, RequestKind
from bot.change import Change
from bot.forges import DeployKind, Deployment, DeploymentGone, DeployTarget, Forge, Work
from bot.governor.messages import SlackRequests
from bot.governor.policy import PolicyHolder, effective_policy, policy_at
from bot.governor.routing import Result, forge_of
from bot.policy.approvers import Directory
from bot.policy.freeze import GateDecision
from bot.policy.schema import DeployGate, Policy

log = logging.getLogger(__name__)


def last_verdict(engine: Engine, forge: str, repo: str, sha: str) -> str | None:
    """The newest changegate decision published for `sha` (a pull request's head or a
    push), or None when it was never checked."""
    table = store.evaluations
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        return conn.execute(
            sa.select(table.c.decision)
            .where(table.c.forge == forge, table.c.repo == repo, table.c.head_sha == sha)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(1)
        ).scalar()


def waiting_entry(deployment: Deployment) -> dict[str, Any]:
    """What it takes to answer this deployment later, kept on its request."""
    return deployment.target.to_json()


class DeployGates:
    """The "deployment-gate" action of the workers, and its later answers."""

    def __init__(
        self,
        engine: Engine,
        holder: PolicyHolder,
        forges: Mapping[str, Forge],
        slack: SlackRequests | None = None,
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.forges = dict(forges)
        self.slack = slack

    # -- a deployment asks -------------------------------------------------------------
    def handle(self, work: Work, forge: Forge, item: inbox.Claimed) -> Result:
        """The workers' "deployment-gate" action: decide now, or wait for Slack."""
        change, deployment = work.change, work.deployment
        environment = deployment.environment if deployment is not None else ""
        if change is None or deployment is None or not environment:
            return inbox.IGNORED, "deployment gate without a change or an environment"
        policy = effective_policy(self.holder.policy, forge, change)
        gate = policy.deploys.get(environment)
        if deployment.target.kind is DeployKind.STARTED:
            if gate is None and policy.deploys.default == "allow":
                return inbox.IGNORED, f"no deploy gate for {environment}; deploys.default allows"
            return self._audit_start(work, environment, item.key)
        if gate is None:
            return self._ungated(work, forge, policy, environment, item.key)
        if deployment.unreadable:  # who started it is unknown: nobody can approve
            comment = (
                f"changegate {deployment.unreadable}: it cannot tell who started "
                "this deploy, so it cannot be approved."
            )
            self._answer(forge, change.repo, environment, waiting_entry(deployment),
                         GateDecision("rejected", comment), None)  # fmt: skip
            return inbox.DONE, comment
        return self._ask(change, deployment, forge, policy, gate, item.key)

    def _directory(self, policy: Policy, gate: DeployGate) -> Directory:
        return self.slack.directory(policy, [gate.approvers]) if self.slack else Directory()

    def _ask(
        self,
        change: Change,
        deployment: Deployment,
        forge: Forge,
        policy: Policy,
        gate: DeployGate,
        delivery_key: str,
    ) -> Result:
        """Decide the gate for a new deployment; a pending one waits on its request."""
        environment = deployment.environment
        entry = waiting_entry(deployment)
        verdict = last_verdict(self.engine, forge.name, change.repo, change.head)
        directory = self._directory(policy, gate)
        with Session(self.engine, expire_on_commit=False) as session:
            run = DeployRun(
                forge=forge.name,
                repo=change.repo,
                environment=environment,
                sha=change.head,
                verdict=verdict,
                initiator=(forge.name, change.author) if change.author else None,
                details={"waiting": [], "initiators": [list(i) for i in deployment.initiators]},
                new_run=True,
                delivery_id=delivery_key,
            )
            result = gate_deploy(session, policy, run, gate=gate, directory=directory)
            request = result.request
            pending = result.decision.state == "pending"
            if pending and request is not None:
                waiting = list(request.details.get("waiting") or [])
                if entry not in waiting:
                    waiting.append(entry)
                request.details = {**request.details, "waiting": waiting}
                if not request.channel and self.slack is not None:
                    request.channel = self.slack.deploy_channel(policy, gate)
                session.add(request)
            session.commit()
        if pending and request is not None:
            if self.slack is not None:
                self.slack.post_requests([request.id])
            else:
                log.warning("deploy gate %s waits for approvals, but Slack is off", request.id)
            return inbox.DONE, f"pending: {result.decision.comment}"
        self._answer(forge, change.repo, environment, entry, result.decision, request)
        return inbox.DONE, f"{result.decision.state}: {result.decision.comment}"

    def _ungated(
        self, work: Work, forge: Forge, policy: Policy, environment: str, delivery_key: str
    ) -> Result:
        """A deploy to an environment the policy has no gate for. Held and reported (a gate
        that fails open lets a typo or a new environment through), unless the admin policy
        says `deploys.default: allow`. GitHub waits on us as its protection rule, so it is
        always answered; a GitLab manual job simply stays unplayed."""
        change, deployment = work.change, work.deployment
        assert change is not None and deployment is not None
        allowed = policy.deploys.default == "allow"
        if allowed:
            comment = f"changegate has no gate for {environment}; deploys.default allows it."
        else:
            comment = (
                f"changegate has no gate for {environment}: held. Add deploys.{environment} "
                "to the policy (or, as its admin, set deploys.default: allow)."
            )
        if forge.name == "github":
            decision = GateDecision("approved" if allowed else "rejected", comment)
            self._answer(forge, change.repo, environment, waiting_entry(deployment),
                         decision, None)  # fmt: skip
        if not allowed:
            with Session(self.engine) as session:
                audit.append(
                    session,
                    audit.Entry(
                        action="deploy.held",
                        actor=(forge.name, change.author) if change.author else None,
                        subject=requests.deploy_subject(forge.name, change.repo, environment),
                        sha=change.head,
                        rules=["deploys.default"],
                        channel=forge.name,
                        delivery_id=delivery_key,
                        decision="rejected",
                        detail={"environment": environment, "reason": comment},
                    ),
                )
                session.commit()
        return inbox.DONE, comment

    # -- a decision arrives later ------------------------------------------------------
    def resume(self, request_id: str, delivery_key: str | None = None) -> GateDecision | None:
        """Ask the gate of a deploy request again (after a click, a break-glass or its
        expiry) and answer every deployment still waiting on it once decided."""
        with Session(self.engine.execution_options(sqlite_deferred=True)) as session:
            request = requests.get_request(session, request_id)
            if request is None or request.kind != RequestKind.DEPLOY:
                return None
            session.expunge(request)
        waiting = list(request.details.get("waiting") or [])
        forge_name = forge_of(request.subject)
        forge = self.forges.get(forge_name)
        environment = request.environment or ""
        if not waiting or forge is None:
            return None
        policy = policy_at(self.holder.policy, self.forges, forge_name, request.repo, request.sha)
        gate = policy.deploys.get(environment)
        if gate is None:
            return None
        directory = self._directory(policy, gate)
        verdict = last_verdict(self.engine, forge_name, request.repo, request.sha)
        with Session(self.engine, expire_on_commit=False) as session:
            run = DeployRun(
                forge=forge_name,
                repo=request.repo,
                environment=environment,
                sha=request.sha,
                verdict=verdict,
                initiator=(request.author_system, request.author)
                if request.author_system and request.author
                else None,
                delivery_id=delivery_key,
            )
            result = gate_deploy(session, policy, run, gate=gate, directory=directory)
            session.commit()
        if result.decision.state == "pending":
            return result.decision
        decided = self._decided(request_id)
        for entry in waiting:
            self._answer(forge, request.repo, environment, entry, result.decision, decided)
            with Session(self.engine) as session:  # answered: never answer it twice
                current = requests.get_request(session, request_id)
                if current is not None:
                    left = [w for w in current.details.get("waiting") or [] if w != entry]
                    current.details = {**current.details, "waiting": left}
                    session.add(current)
                    session.commit()
        if self.slack is not None:
            self.slack.update_messages([request_id])
        return result.decision

    def _decided(self, request_id: str) -> ApprovalRequestRecord | None:
        with Session(self.engine.execution_options(sqlite_deferred=True)) as session:
            request = requests.get_request(session, request_id)
            if request is not None:
                session.expunge(request)
            return request

    # -- answering the forge -------------------------------------------------------------
    def _answer(
        self,
        forge: Forge,
        repo: str,
        environment: str,
        entry: dict[str, Any],
        decision: GateDecision,
        request: ApprovalRequestRecord | None,
    ) -> None:
        try:
            self._send(forge, repo, environment, entry, decision, request)
        except DeploymentGone as exc:  # anything else is retried with the delivery
            # the decision itself is in the audit log
            log.warning("%s %s: the forge no longer waits for an answer (%s): %s",
                        repo, environment, exc.status, exc)  # fmt: skip

    def _send(
        self,
        forge: Forge,
        repo: str,
        environment: str,
        entry: dict[str, Any],
        decision: GateDecision,
        request: ApprovalRequestRecord | None,
    ) -> None:
        approved = decision.state == "approved"
        target = DeployTarget.from_json(entry)
        targets = [target]
        if target.kind is DeployKind.MANUAL_JOB and approved:  # one job at a time: each start
            # is audited as it happens, even if a later one is refused
            targets = [dataclasses.replace(target, job_ids=(job,)) for job in target.job_ids]
        for one in targets:
            for job_id in forge.answer_deployment(
                repo, environment, one, approved, decision.comment
            ):
                self._audit_play(forge.name, repo, environment, job_id, request)
        log.info("deploy gate %s %s: %s", repo, environment, decision.state)

    def _audit_play(
        self,
        forge: str,
        repo: str,
        environment: str,
        job_id: int,
        request: ApprovalRequestRecord | None,
    ) -> None:
        """The bot's token plays the job; the audit names the human who approved it."""
        approvers: list[list[str]] = []
        actor: tuple[str, str] | None = None
        sha = request.sha if request is not None else ""
        subject = (
            request.subject
            if request is not None
            else requests.deploy_subject(forge, repo, environment)
        )
        with Session(self.engine) as session:
            if request is not None:
                approvers = [
                    [a.system, a.user] for a in queries.approvals_for(session, subject, sha)
                ]
                glass = queries.break_glass_for(session, subject, sha)
                if glass is not None:
                    actor = (glass.actor_system, glass.actor)
                elif request.decided_by_system and request.decided_by:
                    actor = (request.decided_by_system, request.decided_by)
                elif approvers:
                    actor = (approvers[-1][0], approvers[-1][1])
            audit.append(
                session,
                audit.Entry(
                    action="deploy.played",
                    actor=actor,
                    subject=subject,
                    sha=sha,
                    rules=[f"deploys.{environment}"],
                    channel=actor[0] if actor else "system",
                    decision="approved",
                    detail={
                        "job_id": job_id,
                        "approved_by": approvers,
                        "played_with": f"{forge} bot token",
                    },
                ),
            )
            session.commit()

    def _audit_start(self, work: Work, environment: str, delivery_key: str) -> Result:
        """A GitLab deployment that is created or already running: nothing can hold it;
        record whether it had its approval."""
        change, deployment = work.change, work.deployment
        assert change is not None and deployment is not None
        status = deployment.status
        if status != "running":
            return inbox.IGNORED, f"deployment {status}: gated through its manual job"
        subject = requests.deploy_subject("gitlab", change.repo, environment)
        with Session(self.engine) as session:
            approved = queries.break_glass_for(session, subject, change.head) is not None or any(
                r.state == "approved" for r in queries.requests_for(session, subject, change.head)
            )
            audit.append(
                session,
                audit.Entry(
                    action="deploy.started",
                    actor=("gitlab", change.author) if change.author else None,
                    subject=subject,
                    sha=change.head,
                    rules=[f"deploys.{environment}"],
                    channel="gitlab",
                    delivery_id=delivery_key,
                    decision="approved" if approved else "unapproved",
                    detail={"deployment_id": deployment.target.deployment_id},
                ),
            )
            session.commit()
        return inbox.DONE, "started with approval" if approved else "started WITHOUT approval"
