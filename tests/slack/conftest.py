"""Fixtures for Slack: the stand-in and a real WebClient talking to it, a button signer,
`sign` for interaction requests (their payloads: block_actions etc. in standins.slack), a
policy whose groups name Slack users and a user group, and `make_request` for messages.

tests/approvals shares these (its conftest imports them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.approvals.models import ApprovalRequestRecord, RequestState
from bot.change import Action, Finding
from bot.policy.schema import Policy, load_policy_text
from bot.slack.blocks import findings_detail
from bot.slack.client import make_client
from bot.slack.signing import ButtonSigner

from standins.slack import TOKEN, SlackStandin, SlackState, signed_headers

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
T0 = dt.datetime(2024, 6, 3, 9, 0)  # a Monday, naive UTC like the store
SHA = "5555555555555555555555555555555555555555"

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


def make_request(**overrides: Any) -> ApprovalRequestRecord:
    findings = [
        Finding("deploy/production/values.yaml", 14, "prod-only", "prod-only-change",
                Action.REQUIRE_APPROVAL, "deploy/production/values.yaml",
                "only production changes, no other environment"),
        Finding("deploy/production/app.yaml", None, "prod-only", "prod-only-change",
                Action.REQUIRE_APPROVAL, "deploy/production/app.yaml", "production only <b>"),
    ]  # fmt: skip
    fields: dict[str, Any] = {
        "id": "a" * 32,
        "kind": "change",
        "subject": "github:acme/app#12",
        "sha": SHA,
        "group_name": "senior",
        "rules": ["prod-only"],
        "min_approvals": 1,
        "author_system": "github",
        "author": "bob",
        "state": RequestState.PENDING,
        "repo": "acme/app",
        "number": 12,
        "title": "Raise replicas & memory",
        "url": "https://github.com/acme/app/pull/12",
        "details": {"findings": findings_detail(findings)},
        "created_at": T0,
        "expires_at": T0 + dt.timedelta(hours=4),
    }
    fields.update(overrides)
    return ApprovalRequestRecord(**fields)
