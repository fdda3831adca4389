"""A request's life against a real SQLite store: opened once per subject, SHA and group;
superseded by a new head or base, reopened by a force-push back; expiry, reminders, its message."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from slack.conftest import SHA
from slack_sdk import WebClient
from sqlmodel import Session

from bot.approvals.decisions import Ballot, record_decision
from bot.approvals.models import RequestState
from bot.approvals.queries import approvals_for, requests_for
from bot.approvals.requests import (
    RequestSpec,
    expire_due,
    open_request,
    reminders_due,
    set_message,
)
from bot.change import Decision
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy
from bot.slack.client import SlackNotifier
from bot.slack.signing import ButtonSigner
from bot.views.memory import MemoryView

from .conftest import SHA1, SHA2, SRE_LEADS, SUBJECT, T0, open_change
from standins.slack import SlackStandin


def test_open_is_idempotent_per_subject_sha_and_group(session: Session) -> None:
    first = open_change(session)
    again = open_change(session, now=T0 + dt.timedelta(minutes=5))
    assert first.created and not again.created
    assert again.request.id == first.request.id
    assert again.request.expires_at == T0 + dt.timedelta(hours=4)
    assert len(requests_for(session, SUBJECT)) == 1


def test_new_head_supersedes_and_a_click_on_the_old_request_is_refused(
    session: Session, policy: Policy
) -> None:
    old = open_change(session, SHA1).request
    new = open_change(session, SHA2, now=T0 + dt.timedelta(minutes=10))
    assert [r.id for r in new.superseded] == [old.id]
    assert old.state == RequestState.SUPERSEDED
    outcome = record_decision(
        session, policy, Ballot(old.id, SHA1, ("slack", "U0ALICE"), "approve"), now=T0
    )
    assert not outcome.accepted
    assert "out of date" in outcome.message and "2222222" in outcome.message
    assert approvals_for(session, SUBJECT, SHA1) == []
    assert new.request.state == RequestState.PENDING


def test_a_new_base_supersedes_the_request_for_the_old_diff(
    session: Session, policy: Policy
) -> None:
    old = open_change(session, basis="innocuous@" + SHA2, min_approvals=2).request
    record_decision(session, policy, Ballot(old.id, SHA1, ("slack", "U0ALICE"), "approve"), now=T0)
    retargeted = open_change(
        session, basis="main@" + SHA2, min_approvals=2, now=T0 + dt.timedelta(minutes=10)
    )

    assert retargeted.created and retargeted.request.id != old.id  # a new message, same head
    assert [r.id for r in retargeted.superseded] == [old.id]
    assert old.state == RequestState.SUPERSEDED
    assert "now targets main" in (old.state_reason or "")
    outcome = record_decision(
        session, policy, Ballot(old.id, SHA1, ("slack", "U0CAROL"), "approve"), now=T0
    )
    assert not outcome.accepted  # a click on the old diff's message
    # the approval given on the old diff does not count for the head shown on the new base
    view = MemoryView(
        head={"deploy/production/app.yaml": "replicas: 4\n"},
        base={"deploy/production/app.yaml": "replicas: 3\n"},
        author="bob",
        forge="github",
    )
    given = approvals_for(session, SUBJECT, SHA1)
    assert [a.user for a in given] == ["U0ALICE"]  # given on SHA1, before the base changed
    since = T0 + dt.timedelta(minutes=10)
    view.change = dataclasses.replace(view.change, head=SHA1, basis_since=since)
    verdict = evaluate(policy, view, given, directory=SRE_LEADS)
    assert verdict.decision is Decision.APPROVAL_REQUIRED
    assert verdict.approvals[0].ignored[0][1] == "given before the change's base changed"


def test_force_push_back_to_an_old_head_reopens_its_request(
    session: Session, policy: Policy
) -> None:
    first = open_change(session, SHA1).request
    set_message(session, first.id, "C0APPROVALS", "1.1")
    open_change(session, SHA2, now=T0 + dt.timedelta(minutes=5))
    back = open_change(session, SHA1, now=T0 + dt.timedelta(minutes=10))
    assert back.request.id == first.id and back.created  # needs a new message
    assert first.state == RequestState.PENDING and first.message_ts is None
    assert first.expires_at == T0 + dt.timedelta(hours=4, minutes=10)
    ok = record_decision(
        session, policy, Ballot(first.id, SHA1, ("slack", "U0ALICE"), "approve"), now=T0
    )
    assert ok.settled


def test_expiry_and_a_click_after_it(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    assert expire_due(session, T0 + dt.timedelta(hours=3, minutes=59)) == []
    expired = expire_due(session, T0 + dt.timedelta(hours=4))
    assert [r.id for r in expired] == [request.id]
    assert request.state == RequestState.EXPIRED
    outcome = record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0ALICE"), "approve"),
        now=T0 + dt.timedelta(hours=5),
    )
    assert not outcome.accepted and "expired at 2024-06-03 13:00 UTC" in outcome.message


def test_reminder_once_before_expiry(session: Session) -> None:
    request = open_change(session).request  # expires in 4h: nudged 1h before
    # its Slack message is not posted yet: nothing to nudge in, try again next sweep
    assert reminders_due(session, T0 + dt.timedelta(hours=3)) == []
    set_message(session, request.id, "C0APPROVALS", "1700000000.000100")
    assert reminders_due(session, T0 + dt.timedelta(hours=2, minutes=59)) == []
    due = reminders_due(session, T0 + dt.timedelta(hours=3))
    assert [r.id for r in due] == [request.id]
    assert reminders_due(session, T0 + dt.timedelta(hours=3, minutes=30)) == []


def test_workflow_request_posts(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy, session: Any
) -> None:
    opened = open_request(
        session,
        RequestSpec(
            subject="github:acme/app#3",
            sha=SHA,
            group="senior",
            rules=["prod-only"],
            expires_after=dt.timedelta(hours=4),
            repo="acme/app",
            number=3,
            title="t",
        ),
        now=T0,
    )
    channel, ts = SlackNotifier(client, signer).post_request(
        opened.request, policy.groups["senior"], "C0APPROVALS"
    )
    set_message(session, opened.request.id, channel, ts)
    assert (opened.request.channel, opened.request.message_ts) == (channel, ts)
