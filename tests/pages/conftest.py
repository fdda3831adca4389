"""Fixtures of the page tests: a SQLite store holding a blocked pull request (its verdict,
an approval request, decisions and refusals in the audit log), the pages mounted on an
app, and a real uvicorn server for the browser tests."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot import inbox, pages, store
from bot.approvals.decisions import Ballot, record_decision
from bot.approvals.requests import (
    RequestSpec,
    open_request,
)
from bot.change import Approval, Change, Verdict
from bot.forges import Delivery
from bot.governor import PolicyHolder
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy
from bot.settings import Settings
from bot.views.memory import MemoryView

ADMIN_TOKEN = "cg-admin-7f3b9a1c2d4e5f60"
REPO = "acme/shop"
NUMBER = 42
SUBJECT = f"github:{REPO}#{NUMBER}"
HEAD = "3f9c2d1e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
OLD = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
T0 = dt.datetime(2024, 6, 3, 9, 0)

POLICY = """\
version: 1
environments:
  production:
    paths: ["deploy/production/**"]
  staging:
    paths: ["deploy/staging/**"]
groups:
  senior:
    github: ["alice", "carol"]
    slack: ["U0ALICE"]
  emergency:
    slack: ["U0OPS"]
people:
  - name: alice
    github: alice
    slack: U0ALICE
rules:
  - id: pinned-images
    kind: unpinned-image
    action: block
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
    min_approvals: 1
deploys:
  production:
    approvers: senior
    expires_after: 4h
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:latest
"""


def stored_verdict(verdict: Verdict, change: Change) -> dict[str, Any]:
    """The verdict JSON the pages read: `Verdict.as_dict()` plus who approved, which
    approvals did not count and why, and the change's title. (The same enrichment is
    proposed for `store.save_evaluation`; until it lands, tests store it themselves.)"""
    data: dict[str, Any] = json.loads(json.dumps(verdict.as_dict()))
    for entry, status in zip(data["approvals"], verdict.approvals, strict=True):
        entry["approvers"] = list(status.approvers)
        entry["ignored"] = [{"who": who, "why": why} for who, why in status.ignored]
    data["change"] = {"title": change.title, "author": change.author, "url": change.url}
    return data


def save_evaluation(
    engine: Engine,
    *,
    token: str,
    change: Change,
    verdict: Verdict,
    subject: str = SUBJECT,
    at: dt.datetime | None = None,
    enriched: bool = True,
) -> None:
    """Save through the store, then (with `enriched`) store the full verdict JSON."""
    store.save_evaluation(
        engine,
        store.PublishedVerdict(
            token=token,
            forge=change.forge,
            subject=subject,
            repo=change.repo,
            number=change.number,
            verdict=verdict,
            delivery_id=None,
        ),
    )
    values: dict[str, Any] = {}
    if enriched:
        values["verdict"] = stored_verdict(verdict, change)
    else:  # a row stored before verdicts carried approver names
        values["verdict"] = json.loads(json.dumps(verdict.as_dict()))
    if at is not None:
        values["created_at"] = at
    if values:
        with engine.begin() as conn:
            conn.execute(
                sa.update(store.evaluations)
                .where(store.evaluations.c.token == token)
                .values(**values)
            )


def blocked_verdict(policy: Policy, head: str = HEAD) -> tuple[Change, Verdict]:
    """A pull request that pins nothing and touches production only; three approvals were
    given, none of which counts (older commit, the author, not a member)."""
    change = Change(
        repo=REPO,
        base="b" * 40,
        head=head,
        forge="github",
        author="dave",
        title="Bump the shop to the newest nginx",
        number=NUMBER,
    )
    view = MemoryView({"deploy/production/app.yaml": DEPLOYMENT}, {})
    view.change = change
    approvals = [
        Approval("github", "alice", OLD, via="review"),
        Approval("github", "dave", head, via="review"),
        Approval("github", "bob", head, via="review"),
    ]
    return change, evaluate(policy, view, approvals)


@dataclass
class Seeded:
    token: str
    older_token: str
    request_id: str
    change: Change
    verdict: Verdict


def seed_blocked_change(engine: Engine, policy: Policy) -> Seeded:
    """Two evaluations of one pull request, its approval request, an approval of the old
    commit, and a refused click, as the workflow itself records them."""
    old_change, old_verdict = blocked_verdict(policy, head=OLD)
    save_evaluation(engine, token="tok-older-eval", change=old_change, verdict=old_verdict, at=T0)
    with Session(engine) as session:
        opened = open_request(
            session,
            RequestSpec(
                subject=SUBJECT,
                sha=OLD,
                group="senior",
                rules=["prod-only"],
                expires_after=dt.timedelta(hours=4),
                author=("github", "dave"),
                repo=REPO,
                number=NUMBER,
                title="Bump the shop to the newest nginx",
            ),
            now=T0 + dt.timedelta(minutes=1),
        )
        record_decision(
            session,
            policy,
            Ballot(opened.request.id, OLD, ("slack", "U0BOB"), "approve"),
            now=T0 + dt.timedelta(minutes=5),
        )
        record_decision(
            session,
            policy,
            Ballot(opened.request.id, OLD, ("slack", "U0ALICE"), "approve", reason="looks fine"),
            now=T0 + dt.timedelta(minutes=6),
        )
        session.commit()
    change, verdict = blocked_verdict(policy)
    token = store.new_token()
    save_evaluation(
        engine, token=token, change=change, verdict=verdict, at=T0 + dt.timedelta(minutes=10)
    )
    with Session(engine) as session:
        current = open_request(
            session,
            RequestSpec(
                subject=SUBJECT,
                sha=HEAD,
                group="senior",
                rules=["prod-only"],
                expires_after=dt.timedelta(hours=4),
                author=("github", "dave"),
                repo=REPO,
                number=NUMBER,
                title="Bump the shop to the newest nginx",
            ),
            now=T0 + dt.timedelta(minutes=11),
        )
        session.commit()
        request_id = current.request.id
    return Seeded(token, "tok-older-eval", request_id, change, verdict)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = store.make_engine(f"sqlite:///{tmp_path / 'pages.db'}")
    store.load_models().create_all(eng)
    with eng.begin() as conn:  # what `alembic stamp head` records
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute(
            sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": store.head_revision()}
        )
    yield eng
    eng.dispose()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def holder(policy_file: Path) -> PolicyHolder:
    return PolicyHolder(policy_file, reload_seconds=0)


@pytest.fixture
def make_settings(tmp_path: Path, policy_file: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path / 'pages.db'}",
            "policy": policy_file,
            "public_url": "http://127.0.0.1:8000",
            "github_webhook_secret": SecretStr("It's a Secret to Everybody"),
            # read by the pages with getattr; ignored until Settings declares it
            "admin_token": SecretStr(ADMIN_TOKEN),
            "worker_count": 0,
            "policy_reload_seconds": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def seeded(engine: Engine, holder: PolicyHolder) -> Seeded:
    return seed_blocked_change(engine, holder.policy)


def pages_app(
    engine: Engine, settings: Settings, holder: PolicyHolder, admin_token: str | None
) -> Starlette:
    return Starlette(routes=pages.routes(engine, settings, holder, admin_token=admin_token))


@pytest.fixture
def client(engine: Engine, settings: Settings, holder: PolicyHolder) -> Iterator[TestClient]:
    with TestClient(pages_app(engine, settings, holder, ADMIN_TOKEN)) as c:
        yield c


def mount_pages(app: Starlette, admin_token: str = ADMIN_TOKEN) -> Starlette:
    """The pages in a full `create_app` app: mounted by the app itself once the lead adds
    them there, else put in front of its routes here."""
    if not any(getattr(r, "name", None) == "admin" for r in app.router.routes):
        app.router.routes[0:0] = pages.routes(
            app.state.engine, app.state.settings, app.state.policy, admin_token=admin_token
        )
    return app


BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


ADMIN_PAGES = [
    "/admin",
    "/admin/requests",
    "/admin/verdicts",
    "/admin/dead",
    "/admin/audit",
    "/admin/policy",
]


def sign_in(client: TestClient) -> None:
    r = client.post(
        "/admin/login", data={"token": ADMIN_TOKEN, "next": "/admin"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def dead_delivery(engine: Engine, delivery_id: str, error: str = "RuntimeError: boom") -> str:
    """A delivery that used its only attempt, through the inbox's own claim and fail."""
    delivery = Delivery(delivery_id, "github", "pull_request", b'{"number": 7}')
    assert inbox.store(engine, delivery, subject=f"github:{REPO}#7")
    (claimed,) = inbox.claim(engine, "w-test", max_attempts=1)
    assert inbox.fail(engine, claimed.key, "w-test", error, max_attempts=1) == inbox.DEAD
    return claimed.key


def state_of(engine: Engine, key: str) -> str | None:
    row = inbox.get(engine, key)
    return row["state"] if row is not None else None
