"""End to end: the real app (create_app + uvicorn, real workers) against the GitHub,
GitLab and Slack stand-ins, reached by PyGithub, python-gitlab and slack-sdk through the
CHANGEGATE_* URL settings. Webhooks are signed as the forges sign them; Slack
interactions are signed with slack-sdk's own signature code."""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from live import LiveServer, wait_for
from sqlmodel import Session, select

from bot.app import create_app
from bot.approvals.models import ApprovalRequestRecord, AuditRecord
from bot.forges.github import clear_caches as clear_github_caches
from bot.forges.gitlab import clear_caches as clear_gitlab_caches
from bot.settings import Settings
from bot.slack.interactions import APPROVE_ACTION

from standins.github import CheckRun, GitHubStandIn, app_key_pair
from standins.gitlab import GitLabStandIn
from standins.gitrepo import GitRepo
from standins.slack import TOKEN as SLACK_TOKEN
from standins.slack import Message, SlackStandin, SlackState, form, signed_headers
from standins.slack import block_actions as slack_block_actions
from support import BACKENDS, postgres_schema

APP_ID = 5151
GITHUB_SECRET = "github webhook secret"
GITLAB_SECRET = "gitlab webhook secret"
SLACK_SECRET = "slack signing secret 0123456789"
REPO = "acme/app"
PROJECT = "acme/platform/app"

POLICY = """\
version: 1
environments:
  production:
    paths: ["deploy/production/**"]
  staging:
    paths: ["deploy/staging/**"]
groups:
  senior:
    github: ["alice"]
    gitlab: ["alice"]
    slack: ["U0ALICE", "S0SRELEADS"]
    slack_channel: C0APPROVALS
  emergency:
    slack: ["U0OPS"]
people:
  - name: alice
    github: alice
    gitlab: alice
    slack: U0ALICE
  - name: bob
    github: bob
    gitlab: bob
    slack: U0BOB
rules:
  - id: pinned-images
    kind: unpinned-image
    action: block
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
  - id: migration-playbook
    kind: migration-playbook
    action: block
    paths: ["db/migrate/**"]
deploys:
  production:
    approvers: senior
    slack_channel: C0DEPLOYS
    expires_after: 4h
  frozen:
    approvers: senior
    slack_channel: C0DEPLOYS
    freeze:
      - name: change-freeze
        timezone: Europe/Berlin
        from: 2000-01-01
        until: 2999-12-31
break_glass:
  group: emergency
  retro_review_within: 24h
"""

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
        - name: web
          image: {image}
"""


def manifest(image: str = "nginx:1.25.3", replicas: int = 2) -> str:
    return MANIFEST.format(image=image, replicas=replicas)


# -- stand-ins ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The App's private key file and its public PEM (generated with cryptography)."""
    private, public = app_key_pair(serialization.PrivateFormat.TraditionalOpenSSL)
    path = tmp_path_factory.mktemp("app") / "app.pem"
    path.write_text(private)
    return path, public


@pytest.fixture(scope="session")
def github_server(app_key: tuple[Path, str]) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(APP_ID, app_key[1]) as standin:
        yield standin


@pytest.fixture(scope="session")
def gitlab_server() -> Iterator[GitLabStandIn]:
    with GitLabStandIn() as standin:
        yield standin


@pytest.fixture
def github(github_server: GitHubStandIn) -> GitHubStandIn:
    github_server.reset()
    clear_github_caches()
    return github_server


@pytest.fixture
def gitlab(gitlab_server: GitLabStandIn) -> GitLabStandIn:
    gitlab_server.reset()
    clear_gitlab_caches()
    return gitlab_server


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    state = SlackState(usergroups={"S0SRELEADS": ["U0CAROL", "U0DAVE"]})
    with SlackStandin.running(state) as standin:
        yield standin


# -- the server --------------------------------------------------------------------------


@dataclass
class Harness:
    """The running server and the stand-ins around it, with the moves a test makes."""

    server: LiveServer
    github: GitHubStandIn
    gitlab: GitLabStandIn
    slack: SlackStandin
    http: httpx.Client

    @property
    def engine(self) -> Any:
        return self.server.app.state.engine

    # -- webhooks ----------------------------------------------------------------------
    def github_hook(self, event: str, payload: dict[str, Any], *, delivery: str | None = None
                    ) -> tuple[bytes, dict[str, str]]:  # fmt: skip
        return self.github.webhook(event, payload, GITHUB_SECRET, delivery=delivery)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(f"{self.server.url}{path}", content=body, headers=headers)

    def send_github(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        response = self.post("/webhooks/github", *self.github_hook(event, payload))
        assert response.status_code == 202, response.text
        return response

    def send_gitlab(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        body, headers = self.gitlab.webhook(event, payload, GITLAB_SECRET)
        response = self.post("/webhooks/gitlab", body, headers)
        assert response.status_code == 202, response.text
        return response

    # -- check runs ----------------------------------------------------------------------
    def completed_run(self, head: str, conclusion: str | None = None) -> CheckRun:
        """The newest check run on `head` once it is completed (with `conclusion`)."""

        def probe() -> CheckRun | None:
            runs = sorted(self.github.runs_for(REPO, head), key=lambda r: r.id)
            last = runs[-1] if runs else None
            if last is not None and last.status == "completed":
                return last if conclusion in (None, last.conclusion) else None
            return None

        return wait_for(probe, what=f"a {conclusion or 'completed'} check run on {head[:7]}")

    # -- Slack ---------------------------------------------------------------------------
    def messages(self, channel: str) -> list[Message]:
        with self.slack._lock:
            return [m for (c, _ts), m in self.slack.messages.items() if c == channel and m.blocks]

    def request_message(self, channel: str, count: int = 1) -> Message:
        """The `count`-th request message (one with blocks, not a thread reply) posted."""

        def probe() -> Message | None:
            found = [m for m in self.messages(channel) if m.thread_ts is None]
            # a snapshot: the stand-in edits its messages in place on chat.update
            return copy.deepcopy(found[count - 1]) if len(found) >= count else None

        return wait_for(probe, what=f"request message #{count} in {channel}")

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        return signed_headers(body, SLACK_SECRET, timestamp)

    def interact(self, payload: dict[str, Any]) -> httpx.Response:
        body = form(payload)
        return self.post("/slack/interactions", body, self.sign(body))

    def click(self, message: Message, user: str, action_id: str = APPROVE_ACTION
              ) -> httpx.Response:  # fmt: skip
        actions = next(b for b in message.blocks if b["type"] == "actions")
        value = next(e["value"] for e in actions["elements"] if e["action_id"] == action_id)
        payload = block_actions(
            user=user, value=value, action_id=action_id, channel=message.channel, ts=message.ts
        )
        before = len(self.slack.calls)
        response = self.interact(payload)
        assert response.status_code == 200, response.text
        self.settled(before)
        return response

    def settled(self, since_calls: int = 0) -> None:
        """Wait until the inbox is drained (the click and what it caused are processed)."""
        import sqlalchemy as sa

        from bot.store import deliveries

        def idle() -> bool:
            with self.engine.connect() as conn:
                busy = conn.execute(
                    sa.select(sa.func.count()).where(
                        deliveries.c.state.in_(["queued", "processing"])
                    )
                ).scalar()
            return busy == 0

        wait_for(idle, what="the inbox to drain")

    def ephemerals_for(self, user: str) -> list[str]:
        with self.slack._lock:
            return [e["text"] for e in self.slack.ephemerals if e["user"] == user]

    # -- the store -----------------------------------------------------------------------
    def requests(self, **where: Any) -> list[ApprovalRequestRecord]:
        with Session(self.engine) as session:
            query = select(ApprovalRequestRecord)
            for name, value in where.items():
                query = query.where(getattr(ApprovalRequestRecord, name) == value)
            return list(session.exec(query).all())

    def audit(self, action: str) -> list[AuditRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(AuditRecord).where(AuditRecord.action == action)))


def block_actions(
    *, user: str, value: str, action_id: str, channel: str, ts: str
) -> dict[str, Any]:
    """A click as Slack sends it: each with a trigger_id and an action_ts of its own."""
    return slack_block_actions(
        user=user,
        value=value,
        action_id=action_id,
        channel=channel,
        ts=ts,
        trigger_id=f"{uuid.uuid4().int % 10**11}.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        action_ts=f"{time.time():.6f}",
        style=None,
    )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite (created by the server itself), or a fresh PostgreSQL schema migrated the
    way an operator does it (`changegate db upgrade`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'changegate.db'}"
        return
    from bot import store

    with postgres_schema("cg_e2e") as url:
        store.upgrade(url)
        yield url


@pytest.fixture
def policy_text() -> str:
    """The admin policy the server starts with (a test module may override it)."""
    return POLICY


@pytest.fixture
def harness(
    policy_text: str,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    app_key: tuple[Path, str],
    github: GitHubStandIn,
    gitlab: GitLabStandIn,
    slack: SlackStandin,
) -> Iterator[Harness]:
    policy = tmp_path / "policy.yml"
    policy.write_text(policy_text)
    env = {
        "CHANGEGATE_DATABASE_URL": database_url,
        "CHANGEGATE_POLICY": str(policy),
        "CHANGEGATE_PUBLIC_URL": "https://changegate.example.com",
        "CHANGEGATE_GITHUB_APP_ID": str(APP_ID),
        "CHANGEGATE_GITHUB_PRIVATE_KEY_PATH": str(app_key[0]),
        "CHANGEGATE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "CHANGEGATE_GITHUB_API_URL": github.url,
        "CHANGEGATE_GITHUB_THROTTLE": "false",
        "CHANGEGATE_GITLAB_URL": gitlab.url,
        "CHANGEGATE_GITLAB_TOKEN": gitlab.token,
        "CHANGEGATE_GITLAB_WEBHOOK_SECRET": GITLAB_SECRET,
        "CHANGEGATE_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "CHANGEGATE_SLACK_SIGNING_SECRET": SLACK_SECRET,
        "CHANGEGATE_SLACK_API_URL": slack.api_url,
        "CHANGEGATE_WORKER_COUNT": "2",
        "CHANGEGATE_POLL_INTERVAL_SECONDS": "0.05",
        "CHANGEGATE_BACKOFF_BASE_SECONDS": "0.05",
        "CHANGEGATE_BACKOFF_MAX_SECONDS": "0.2",
        "CHANGEGATE_POLICY_RELOAD_SECONDS": "0",
        "CHANGEGATE_APPROVALS_TICK_SECONDS": "0",  # tests sweep with a chosen clock
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    with LiveServer(app) as server, httpx.Client(timeout=10) as http:
        yield Harness(server, github, gitlab, slack, http)


def github_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def repo(github: GitHubStandIn, tmp_path: Path) -> GitRepo:
    """`acme/app` on the GitHub stand-in: production and staging manifests, pinned."""
    git = GitRepo(tmp_path / "app.git")
    git.commit(
        "main",
        {
            "deploy/production/app.yaml": manifest(),
            "deploy/staging/app.yaml": manifest(),
            "README.md": "# app\n",
        },
        "initial commit",
    )
    github.add_repo(REPO, git, installation_id=1)
    return git
