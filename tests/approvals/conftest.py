"""Fixtures for the approval workflow: a SQLite store (and a shared one, SQLite or
PostgreSQL); the policy, the Slack stand-in, its client, the signer and `sign` are the
Slack tests' (tests/slack/conftest.py), imported here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack.conftest import (  # noqa: F401 - shared fixtures and constants
    SIGNING_SECRET,
    T0,
    client,
    policy,
    sign,
    signer,
    slack,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

import bot.approvals.models  # noqa: F401 - registers the tables
from bot import store
from bot.approvals.requests import Opened, RequestSpec, change_subject, open_request
from bot.policy.approvers import Directory

from support import BACKENDS, postgres_schema


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


SHA1 = "1111111111111111111111111111111111111111"
SHA2 = "2222222222222222222222222222222222222222"
SUBJECT = change_subject("github", "acme/app", 12)
SRE_LEADS = Directory({"S0SRELEADS": frozenset({"U0CAROL", "U0DAVE"})})


def open_change(
    session: Session,
    sha: str = SHA1,
    *,
    min_approvals: int = 1,
    now: dt.datetime = T0,
    basis: str = "",
) -> Opened:
    return open_request(
        session,
        RequestSpec(
            subject=SUBJECT,
            sha=sha,
            basis=basis,
            group="senior",
            rules=["prod-only"],
            min_approvals=min_approvals,
            expires_after=dt.timedelta(hours=4),
            author=("github", "bob"),
            repo="acme/app",
            number=12,
            title="Raise production replicas",
            url="https://github.com/acme/app/pull/12",
        ),
        now=now,
    )
