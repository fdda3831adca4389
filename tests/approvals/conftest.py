"""Fixtures for the approval workflow: a SQLite store, a policy, the Slack stand-in, and
`sign` for interaction requests (their payloads: block_actions etc. in standins.slack)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

import bot.approvals.models  # noqa: F401 - registers the tables
from bot import store
from bot.approvals.slack import ButtonSigner, make_client
from bot.policy.schema import Policy, load_policy_text

from standins.slack import TOKEN, SlackStandin, SlackState, signed_headers
from support import BACKENDS, postgres_schema

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
T0 = dt.datetime(2024, 6, 3, 9, 0)  # a Monday, naive UTC like the store

POLICY = """
version: 1
environments:
  production:
    paths: ["deploy/production/**"]
  staging:
    paths: ["deploy/staging/**"]
groups:
  senior:
    github: ["alice", "carol"]
    slack: ["U0ALICE", "S0SRELEADS"]
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
    email: bob@example.com
  - name: carol
    github: carol
    slack: U0CAROL
rules:
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
    min_approvals: 1
deploys:
  production:
    approvers: senior
    min_approvals: 1
    slack_channel: C0DEPLOYS
    expires_after: 4h
"""


@pytest.fixture
def policy() -> Policy:
    return load_policy_text(POLICY, "policy.yml")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'changegate.db'}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:  # a test database needs no fsync
        dbapi_conn.execute("PRAGMA synchronous=OFF")
        dbapi_conn.execute("PRAGMA journal_mode=MEMORY")

    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture(params=BACKENDS)
def shared_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A production-configured engine (bot.store.make_engine) that threads share."""
    if request.param == "sqlite":
        engine = store.make_engine(f"sqlite:///{tmp_path / 'shared.db'}", pool_size=4)
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    with postgres_schema("cg_approvals") as url:
        engine = store.make_engine(url, pool_size=4)
        try:
            SQLModel.metadata.create_all(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandin]:
    state = SlackState(
        usergroups={"S0SRELEADS": ["U0CAROL", "U0DAVE"]},
        users={
            "U0BOB": {"id": "U0BOB", "name": "bob", "profile": {"email": "Bob@Example.com"}},
        },
    )
    with SlackStandin.running(state) as standin:
        yield standin


@pytest.fixture
def client(slack: SlackStandin) -> WebClient:
    return make_client(TOKEN, slack.api_url, timeout=5)


@pytest.fixture
def signer() -> ButtonSigner:
    return ButtonSigner(SIGNING_SECRET)


def sign(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with `body`, signed with SIGNING_SECRET."""
    return signed_headers(body, SIGNING_SECRET, timestamp)
