"""Fixtures for the approval workflow: a SQLite store, a policy, the Slack stand-in, and
interaction requests signed the way Slack signs them (with slack-sdk's own code)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

import bot.approvals.models  # noqa: F401 - registers the tables
from bot import store
from bot.approvals.slack import ButtonSigner, make_client
from bot.policy.schema import Policy, load_policy_text

from standins.slack import TOKEN, SlackStandin, SlackState

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


PG_ENV = "CHANGEGATE_TEST_POSTGRES_URL"
#: PostgreSQL joins in when the environment names one (as in tests/server)
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get(PG_ENV) else [])


@pytest.fixture(params=BACKENDS)
def shared_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A production-configured engine (bot.store.make_engine) that threads share."""
    if request.param == "sqlite":
        engine = store.make_engine(f"sqlite:///{tmp_path / 'shared.db'}", pool_size=4)
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    base = store.normalize_url(os.environ[PG_ENV])
    schema = f"cg_approvals_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    engine = store.make_engine(
        f"{base}{sep}options={urllib.parse.quote(f'-csearch_path={schema}')}", pool_size=4
    )
    try:
        SQLModel.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
    """Headers Slack would send with `body`, signed by slack-sdk's own code."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def form(payload: dict[str, Any]) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def block_actions(
    *, user: str, value: str, action_id: str, channel: str = "C0APPROVALS", ts: str = "1.000100"
) -> dict[str, Any]:
    """Shaped like the `block_actions` example in Slack's interaction payload reference."""
    return {
        "type": "block_actions",
        "team": {"id": "T0CHANGEGATE", "domain": "changegate-test"},
        "user": {
            "id": user,
            "username": user.lower(),
            "name": user.lower(),
            "team_id": "T0CHANGEGATE",
        },
        "api_app_id": "A0CHANGEGATE",
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": ts, "text": "Approval needed", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/A0CHANGEGATE/1232321423432/D09sSasd",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "changegate:x",
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "value": value,
                "style": "primary",
                "type": "button",
                "action_ts": "1548426417.840180",
            }
        ],
    }


def view_submission(*, user: str, private_metadata: str, reason: str) -> dict[str, Any]:
    """Shaped like Slack's `view_submission` reference payload."""
    return {
        "type": "view_submission",
        "team": {"id": "T0CHANGEGATE", "domain": "changegate-test"},
        "user": {
            "id": user,
            "username": user.lower(),
            "name": user.lower(),
            "team_id": "T0CHANGEGATE",
        },
        "api_app_id": "A0CHANGEGATE",
        "token": "verification-token-unused",
        "trigger_id": "12466734323.1395872398.f4f7b5a0a2c1a0",
        "view": {
            "id": "VNHU13V36",
            "type": "modal",
            "callback_id": "changegate_reject_reason",
            "private_metadata": private_metadata,
            "state": {
                "values": {
                    "reason": {"reason_input": {"type": "plain_text_input", "value": reason}}
                }
            },
            "hash": "156663117.cd33ad1f",
        },
        "response_urls": [],
    }
