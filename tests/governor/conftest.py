"""Fixtures of the governor tests: the real governor graph (`bot.governor.build`) over a
SQLite store, the in-memory forge of our own Forge seam, and the Slack stand-in reached
by slack-sdk. Each test drives one governor module through its public entry points."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from serverkit.testforge import MemoryForge, Published
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import governor, inbox, store
from bot.approvals.models import ApprovalRequestRecord
from bot.change import Change, Verdict
from bot.forges import Delivery, DeployKind, DeployTarget
from bot.governor import Governor, PolicyHolder
from bot.settings import Settings

from standins.slack import TOKEN, SlackStandin, SlackState, form, signed_headers

SIGNING_SECRET = "governor signing secret 0123456789"
REPO = "acme/app"
HEAD = "a" * 40

POLICY = """\
version: 1
environments:
  production:
    paths: ["deploy/production/**"]
groups:
  senior:
    github: ["alice"]
    slack: ["U0ALICE"]
    slack_channel: C0APPROVALS
  emergency:
    slack: ["U0OPS"]
people:
  - name: alice
    github: alice
    slack: U0ALICE
  - name: bob
    github: bob
    slack: U0BOB
rules:
  - id: pinned-images
    kind: unpinned-image
    action: block
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
deploys:
  production:
    approvers: senior
    slack_channel: C0DEPLOYS
break_glass:
  group: emergency
  retro_review_within: 24h
"""

PROD_FILE = {"deploy/production/app.yaml": "replicas: 3\n"}


@dataclass
class NotedForge(MemoryForge):
    """The in-memory forge, keeping the note a Slack decision puts on the check."""

    notes: list[str | None] = field(default_factory=list)
    answers: list[tuple[str, str, DeployTarget, bool]] = field(default_factory=list)

    def publish(  # type: ignore[override]
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        super().publish(change, verdict, details_url)
        with self._lock:
            self.notes.append(note)

    def answer_deployment(
        self, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
    ) -> tuple[int, ...]:
        """Recorded; an approved manual job "plays" its jobs."""
        with self._lock:
            self.answers.append((repo, environment, target, approved))
        return target.job_ids if approved and target.kind is DeployKind.MANUAL_JOB else ()

    @property
    def last(self) -> Published:
        return self.published[-1]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = store.make_engine(f"sqlite:///{tmp_path / 'governor.db'}")
    store.load_models().create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def forge() -> NotedForge:
    return NotedForge()


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    with SlackStandin.running(SlackState()) as standin:
        yield standin


def settings_for(policy_file: Path, engine: Engine, slack: SlackStandin | None) -> Settings:
    values: dict[str, Any] = {
        "policy": policy_file,
        "database_url": str(engine.url),
        "public_url": "https://cg.example.com",
        "policy_reload_seconds": 0,
    }
    if slack is not None:
        values |= {
            "slack_bot_token": SecretStr(TOKEN),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": slack.api_url,
        }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def parts(policy_file: Path, engine: Engine, forge: NotedForge, slack: SlackStandin) -> Governor:
    """The governor with Slack on, built as the entry points build it."""
    settings = settings_for(policy_file, engine, slack)
    return governor.build(settings, engine, PolicyHolder.from_settings(settings), {"github": forge})


@pytest.fixture
def quiet(policy_file: Path, engine: Engine, forge: NotedForge) -> Governor:
    """The governor without Slack: approvals come from the forge alone."""
    settings = settings_for(policy_file, engine, None)
    return governor.build(settings, engine, PolicyHolder.from_settings(settings), {"github": forge})


def pull(forge: MemoryForge, number: int = 7, head: str = HEAD, **fields: Any) -> Any:
    """Parse a pull request delivery with the in-memory forge: the governor's input."""
    body = {"repo": REPO, "number": number, "head": head, "author": "bob", **fields}
    body.setdefault("files", PROD_FILE)
    return forge.parse(Delivery(id=f"d-{number}-{head[:4]}", forge="github",
                                event="pull_request", body=json.dumps(body).encode()))  # fmt: skip


def claimed(engine: Engine, delivery: Delivery, subject: str) -> inbox.Claimed:
    """`delivery` stored in the inbox and claimed, as a worker holds it."""
    assert inbox.store(engine, delivery, subject)
    [item] = inbox.claim(engine, "test-worker", limit=1, lease=60)
    return item


def requests(engine: Engine) -> list[ApprovalRequestRecord]:
    with Session(engine) as session:
        return list(session.exec(select(ApprovalRequestRecord)))


def interaction(payload: dict[str, Any]) -> Delivery:
    """A Slack interaction as the endpoint stores it (signed like Slack signs it)."""
    body = form(payload)
    return Delivery(id=f"slack-{len(body)}-{hash(body)}", forge="slack",
                    event=str(payload["type"]), body=body,
                    headers=signed_headers(body, SIGNING_SECRET))  # fmt: skip
