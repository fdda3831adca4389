"""bot/governor/deploy.py: a deployment asks its gate; a running GitLab deployment is
audited, an ungated environment is held, a gated one waits for Slack and is answered
(its manual job played) once approved there."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import inbox
from bot.approvals.models import AuditRecord
from bot.approvals.requests import deploy_subject
from bot.change import Change
from bot.forges import Delivery, DeployKind, Deployment, DeployTarget, Work
from bot.governor import Governor
from bot.governor.deploy import last_verdict
from bot.slack.interactions import APPROVE_ACTION

from .conftest import HEAD, REPO, NotedForge, claimed, interaction, requests
from .test_click import click
from standins.slack import SlackStandin


def deploy(environment: str, target: DeployTarget, status: str = "") -> Work:
    change = Change(repo=REPO, base=None, head=HEAD, forge="gitlab", author="bob")
    deployment = Deployment(environment=environment, target=target, status=status)
    return Work("deployment-gate", f"gitlab:{REPO}@deploy:{environment}", change=change,
                deployment=deployment)  # fmt: skip


def held(engine: Engine, forge: NotedForge, parts: Governor, work: Work) -> tuple[str, str | None]:
    delivery = Delivery(id=uuid.uuid4().hex, forge="gitlab", event="x", body=b"{}")
    item = claimed(engine, delivery, work.subject)
    state, note = parts.gates.handle(work, forge, item)
    assert inbox.complete(engine, item.key, "test-worker", state=state, note=note)
    return state, note


def audit(engine: Engine, action: str) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord).where(AuditRecord.action == action)))


def test_a_running_deployment_cannot_be_held_and_is_audited(
    parts: Governor, engine: Engine
) -> None:
    forge = NotedForge(name="gitlab")
    started = DeployTarget(kind=DeployKind.STARTED, deployment_id=5)
    assert held(engine, forge, parts, deploy("production", started, "created")) == (
        inbox.IGNORED, "deployment created: gated through its manual job")  # fmt: skip
    assert held(engine, forge, parts, deploy("production", started, "running")) == (
        inbox.DONE, "started WITHOUT approval")  # fmt: skip
    [row] = audit(engine, "deploy.started")
    assert row.decision == "unapproved"
    assert row.subject == deploy_subject("gitlab", REPO, "production")


def test_an_environment_without_a_gate_is_held_and_reported(
    parts: Governor, engine: Engine
) -> None:
    forge = NotedForge(name="gitlab")
    job = DeployTarget(kind=DeployKind.MANUAL_JOB, job_ids=(11,), pipeline_id=3)
    state, note = held(engine, forge, parts, deploy("qa", job))
    assert state == inbox.DONE and note is not None and "no gate for qa: held" in note
    assert forge.answers == []  # a manual job simply stays unplayed
    [row] = audit(engine, "deploy.held")
    assert row.rules == ["deploys.default"] and row.decision == "rejected"


def test_a_gated_deploy_waits_for_slack_and_plays_once_approved(
    parts: Governor, engine: Engine, slack: SlackStandin
) -> None:
    assert parts.clicks is not None
    forge = NotedForge(name="gitlab")
    parts.gates.forges["gitlab"] = forge
    parts.clicks.forges["gitlab"] = forge
    job = DeployTarget(kind=DeployKind.MANUAL_JOB, job_ids=(11,), pipeline_id=3)
    state, note = held(engine, forge, parts, deploy("production", job))
    assert state == inbox.DONE and note is not None and note.startswith("pending:")
    assert last_verdict(engine, "gitlab", REPO, HEAD) is None  # never checked: said so
    [request] = requests(engine)
    assert request.kind == "deploy" and request.details["waiting"] == [job.to_json()]
    [message] = [m for m in slack.messages.values() if m.blocks and m.thread_ts is None]
    assert message.channel == "C0DEPLOYS"
    delivery = interaction(click(message, "U0ALICE", APPROVE_ACTION))
    item = claimed(engine, delivery, parts.clicks.inbox_subject(delivery.body))
    assert item.subject == f"gitlab:{REPO}@deploy:production"
    assert parts.clicks.handle_delivery(item)[0] == inbox.DONE
    assert forge.answers == [(REPO, "production", job, True)]
    [played] = audit(engine, "deploy.played")
    assert played.actor == "U0ALICE" and played.detail["job_id"] == 11
    assert [r.state for r in requests(engine)] == ["approved"]
