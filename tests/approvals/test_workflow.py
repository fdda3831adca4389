"""The approval workflow against a real SQLite store: states, who may decide, expiry,
reminders, break-glass, and approvals feeding `evaluate()`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest
from slack.conftest import SHA
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import audit
from bot.approvals import workflow
from bot.approvals.freeze import BreakGlassSettings
from bot.approvals.models import AuditRecord, RequestKind, RequestState
from bot.change import Approval, Decision
from bot.policy.approvers import Directory
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy
from bot.slack.client import SlackNotifier
from bot.slack.signing import ButtonSigner
from bot.views.memory import MemoryView

from .conftest import T0
from standins.slack import SlackStandin

SHA1 = "1111111111111111111111111111111111111111"
SHA2 = "2222222222222222222222222222222222222222"
SUBJECT = workflow.change_subject("github", "acme/app", 12)
SRE_LEADS = Directory({"S0SRELEADS": frozenset({"U0CAROL", "U0DAVE"})})


def open_change(
    session: Session,
    sha: str = SHA1,
    *,
    min_approvals: int = 1,
    now: dt.datetime = T0,
    basis: str = "",
) -> workflow.Opened:
    return workflow.open_request(
        session,
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
        now=now,
    )


def test_open_is_idempotent_per_subject_sha_and_group(session: Session) -> None:
    first = open_change(session)
    again = open_change(session, now=T0 + dt.timedelta(minutes=5))
    assert first.created and not again.created
    assert again.request.id == first.request.id
    assert again.request.expires_at == T0 + dt.timedelta(hours=4)
    assert len(workflow.requests_for(session, SUBJECT)) == 1


def test_new_head_supersedes_and_a_click_on_the_old_request_is_refused(
    session: Session, policy: Policy
) -> None:
    old = open_change(session, SHA1).request
    new = open_change(session, SHA2, now=T0 + dt.timedelta(minutes=10))
    assert [r.id for r in new.superseded] == [old.id]
    assert old.state == RequestState.SUPERSEDED
    outcome = workflow.record_decision(
        session, policy, old.id, SHA1, ("slack", "U0ALICE"), "approve", now=T0
    )
    assert not outcome.accepted
    assert "out of date" in outcome.message and "2222222" in outcome.message
    assert workflow.approvals_for(session, SUBJECT, SHA1) == []
    assert new.request.state == RequestState.PENDING


def test_a_new_base_supersedes_the_request_for_the_old_diff(
    session: Session, policy: Policy
) -> None:
    old = open_change(session, basis="innocuous@" + SHA2, min_approvals=2).request
    workflow.record_decision(session, policy, old.id, SHA1, ("slack", "U0ALICE"), "approve", now=T0)
    retargeted = open_change(
        session, basis="main@" + SHA2, min_approvals=2, now=T0 + dt.timedelta(minutes=10)
    )

    assert retargeted.created and retargeted.request.id != old.id  # a new message, same head
    assert [r.id for r in retargeted.superseded] == [old.id]
    assert old.state == RequestState.SUPERSEDED
    assert "now targets main" in (old.state_reason or "")
    outcome = workflow.record_decision(
        session, policy, old.id, SHA1, ("slack", "U0CAROL"), "approve", now=T0
    )
    assert not outcome.accepted  # a click on the old diff's message
    # the approval given on the old diff does not count for the head shown on the new base
    view = MemoryView(
        head={"deploy/production/app.yaml": "replicas: 4\n"},
        base={"deploy/production/app.yaml": "replicas: 3\n"},
        author="bob",
        forge="github",
    )
    given = workflow.approvals_for(session, SUBJECT, SHA1)
    assert [a.user for a in given] == ["U0ALICE"]  # given on SHA1, before the base changed
    since = T0 + dt.timedelta(minutes=10)
    view.change = dataclasses.replace(view.change, head=SHA1, basis_since=since)
    verdict = evaluate(policy, view, given, directory=SRE_LEADS)
    assert verdict.decision is Decision.APPROVAL_REQUIRED
    assert verdict.approvals[0].ignored[0][1] == "given before the change's base changed"


@pytest.mark.parametrize(
    ("actor", "directory", "accepted", "says"),
    [
        (("slack", "U0MALLORY"), SRE_LEADS, False, "not a member of senior"),
        (("slack", "U0BOB"), SRE_LEADS, False, "You made this change"),  # bob, via people:
        (("github", "bob"), SRE_LEADS, False, "You made this change"),
        (("slack", "U0ALICE"), SRE_LEADS, True, "Approved (1/1)"),  # listed by id
        (("slack", "U0DAVE"), SRE_LEADS, True, "Approved (1/1)"),  # via the user group
        (("slack", "U0DAVE"), Directory(), False, "not a member of senior"),  # group unresolved
        (("slack", "U0CAROL"), Directory(), True, "Approved (1/1)"),  # github: carol, via people:
    ],
)
def test_who_may_approve(
    session: Session,
    policy: Policy,
    actor: tuple[str, str],
    directory: Directory,
    accepted: bool,
    says: str,
) -> None:
    request = open_change(session).request
    outcome = workflow.record_decision(
        session, policy, request.id, SHA1, actor, "approve", directory=directory, now=T0
    )
    assert outcome.accepted is accepted
    assert says in outcome.message
    expected = RequestState.APPROVED if accepted else RequestState.PENDING
    assert request.state == expected
    users = [a.user for a in workflow.approvals_for(session, SUBJECT, SHA1)]
    assert users == ([actor[1]] if accepted else [])


def test_button_for_another_commit_is_refused(session: Session, policy: Policy) -> None:
    request = open_change(session, SHA1).request
    outcome = workflow.record_decision(
        session, policy, request.id, SHA2, ("slack", "U0ALICE"), "approve", now=T0
    )
    assert not outcome.accepted and "names commit 2222222" in outcome.message


def test_min_approvals_counts_people_not_clicks_or_systems(
    session: Session, policy: Policy
) -> None:
    request = open_change(session, min_approvals=2).request
    alice_on_github = [Approval("github", "alice", SHA1, via="review")]
    first = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0ALICE"), "approve",
        other_approvals=alice_on_github, now=T0,
    )  # fmt: skip
    assert first.accepted and not first.settled and "1/2" in first.message
    twice = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0ALICE"), "approve", now=T0
    )
    assert not twice.accepted and "already decided" in twice.message
    carol = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0CAROL"), "approve",
        other_approvals=alice_on_github, now=T0,
    )  # fmt: skip
    assert carol.settled and request.state == RequestState.APPROVED
    assert set(carol.approvers) == {"U0ALICE (slack)", "U0CAROL (slack)"}
    late = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0DAVE"), "approve",
        directory=SRE_LEADS, now=T0,
    )  # fmt: skip
    assert not late.accepted and "already approved" in late.message


def test_forge_review_alone_settles_the_request(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    outcome = workflow.refresh(
        session, policy, request.id, other_approvals=[Approval("github", "carol", SHA1)], now=T0
    )
    assert outcome.settled and request.state == RequestState.APPROVED


def test_reject_with_reason(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    outcome = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0ALICE"), "reject",
        "replicas must change in staging first", now=T0,
    )  # fmt: skip
    assert outcome.accepted and outcome.settled
    assert request.state == RequestState.REJECTED
    rejection = workflow.rejection_for(session, SUBJECT, SHA1)
    assert rejection is not None and rejection.reason == "replicas must change in staging first"
    assert "replicas must change" in (request.state_reason or "")


def test_expiry_and_a_click_after_it(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    assert workflow.expire_due(session, T0 + dt.timedelta(hours=3, minutes=59)) == []
    expired = workflow.expire_due(session, T0 + dt.timedelta(hours=4))
    assert [r.id for r in expired] == [request.id]
    assert request.state == RequestState.EXPIRED
    outcome = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0ALICE"), "approve",
        now=T0 + dt.timedelta(hours=5),
    )  # fmt: skip
    assert not outcome.accepted and "expired at 2024-06-03 13:00 UTC" in outcome.message


def test_a_click_past_the_deadline_expires_the_request(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    outcome = workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0ALICE"), "approve",
        now=T0 + dt.timedelta(hours=4, seconds=1),
    )  # fmt: skip
    assert not outcome.accepted and "expired" in outcome.message
    assert request.state == RequestState.EXPIRED


def test_reminder_once_before_expiry(session: Session) -> None:
    request = open_change(session).request  # expires in 4h: nudged 1h before
    # its Slack message is not posted yet: nothing to nudge in, try again next sweep
    assert workflow.reminders_due(session, T0 + dt.timedelta(hours=3)) == []
    workflow.set_message(session, request.id, "C0APPROVALS", "1700000000.000100")
    assert workflow.reminders_due(session, T0 + dt.timedelta(hours=2, minutes=59)) == []
    due = workflow.reminders_due(session, T0 + dt.timedelta(hours=3))
    assert [r.id for r in due] == [request.id]
    assert workflow.reminders_due(session, T0 + dt.timedelta(hours=3, minutes=30)) == []


def test_slack_approvals_add_up_with_forge_approvals_in_evaluate(
    session: Session, policy: Policy
) -> None:
    view = MemoryView(
        head={"deploy/production/app.yaml": "replicas: 3\n"},
        base={"deploy/production/app.yaml": "replicas: 2\n"},
        author="bob",
        forge="github",
    )
    before = evaluate(policy, view)
    assert before.decision is Decision.APPROVAL_REQUIRED
    request = workflow.open_request(
        session, subject=SUBJECT, sha="head", group="senior", rules=["prod-only"],
        expires_after=dt.timedelta(hours=4), author=("github", "bob"), now=T0,
    )  # fmt: skip
    workflow.record_decision(
        session, policy, request.request.id, "head", ("slack", "U0BOB"), "approve", now=T0
    )
    assert evaluate(policy, view, workflow.approvals_for(session, SUBJECT, "head")).decision is (
        Decision.APPROVAL_REQUIRED
    )
    workflow.record_decision(
        session, policy, request.request.id, "head", ("slack", "U0ALICE"), "approve", now=T0
    )
    after = evaluate(policy, view, workflow.approvals_for(session, SUBJECT, "head"))
    assert after.decision is Decision.PASS
    assert after.approvals[0].approvers == ("U0ALICE (slack)",)


def test_break_glass_takes_effect_and_opens_a_retro_review(
    session: Session, policy: Policy
) -> None:
    request = open_change(session).request
    refused = workflow.break_glass(
        session, policy, subject=SUBJECT, sha=SHA1, actor=("slack", "U0ALICE"),
        reason="prod is down, hotfix", now=T0,
    )  # fmt: skip
    assert not refused.accepted and "Only members of emergency" in refused.message
    terse = workflow.break_glass(
        session, policy, subject=SUBJECT, sha=SHA1, actor=("slack", "U0OPS"), reason="x", now=T0
    )
    assert not terse.accepted and "at least 10 characters" in terse.message
    done = workflow.break_glass(
        session, policy, subject=SUBJECT, sha=SHA1, actor=("slack", "U0OPS"),
        reason="checkout is down, hotfix INC-4411", now=T0,
        settings=BreakGlassSettings(retro_review_within="8h"),
    )  # fmt: skip
    assert done.accepted
    assert request.state == RequestState.APPROVED
    assert "break-glass by U0OPS (slack)" in (request.state_reason or "")
    retro = done.retro_review
    assert retro is not None and retro.kind == RequestKind.RETRO_REVIEW
    assert retro.group_name == "senior" and retro.state == RequestState.PENDING
    assert retro.expires_at == T0 + dt.timedelta(hours=8)
    assert retro.parent_id == request.id
    assert workflow.break_glass_for(session, SUBJECT, SHA1) is not None
    # who broke the glass may not review it
    own = workflow.record_decision(
        session, policy, retro.id, SHA1, ("slack", "U0OPS"), "approve", now=T0
    )
    assert not own.accepted
    escalated = workflow.expire_due(session, T0 + dt.timedelta(hours=8))
    assert [r.id for r in escalated] == [retro.id]
    assert (retro.state_reason or "").startswith("escalated")


def test_every_step_is_audited_and_the_chain_holds(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0MALLORY"), "approve",
        delivery_id="slack:abc", now=T0,
    )  # fmt: skip
    workflow.record_decision(
        session, policy, request.id, SHA1, ("slack", "U0ALICE"), "approve",
        delivery_id="slack:def", now=T0,
    )  # fmt: skip
    session.commit()
    rows = session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()  # type: ignore[arg-type]
    assert [r.action for r in rows] == [
        "approval.requested",
        "approval.refused",
        "approval.approve",
        "approval.approved",
    ]
    refused = rows[1]
    assert (refused.actor_system, refused.actor, refused.sha) == ("slack", "U0MALLORY", SHA1)
    assert refused.rules == ["prod-only"] and refused.delivery_id == "slack:abc"
    assert audit.verify(session) == []


def test_two_people_approving_at_once_both_count(shared_engine: Engine, policy: Policy) -> None:
    with Session(shared_engine) as session:
        request_id = open_change(session, min_approvals=2).request.id
        session.commit()
    barrier = threading.Barrier(2)
    outcomes: list[workflow.Outcome] = []

    def approve(user: str) -> None:
        with Session(shared_engine) as session:
            barrier.wait()
            outcomes.append(
                workflow.record_decision(
                    session, policy, request_id, SHA1, ("slack", user), "approve", now=T0
                )
            )
            session.commit()

    threads = [threading.Thread(target=approve, args=(u,)) for u in ("U0ALICE", "U0CAROL")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.settled for o in outcomes) == [False, True]
    with Session(shared_engine) as session:
        request = workflow.get_request(session, request_id)
        assert request is not None and request.state == RequestState.APPROVED
        assert audit.verify(session) == []


def test_force_push_back_to_an_old_head_reopens_its_request(
    session: Session, policy: Policy
) -> None:
    first = open_change(session, SHA1).request
    workflow.set_message(session, first.id, "C0APPROVALS", "1.1")
    open_change(session, SHA2, now=T0 + dt.timedelta(minutes=5))
    back = open_change(session, SHA1, now=T0 + dt.timedelta(minutes=10))
    assert back.request.id == first.id and back.created  # needs a new message
    assert first.state == RequestState.PENDING and first.message_ts is None
    assert first.expires_at == T0 + dt.timedelta(hours=4, minutes=10)
    ok = workflow.record_decision(
        session, policy, first.id, SHA1, ("slack", "U0ALICE"), "approve", now=T0
    )
    assert ok.settled


def test_workflow_request_posts(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy, session: Any
) -> None:
    opened = workflow.open_request(
        session, subject="github:acme/app#3", sha=SHA, group="senior", rules=["prod-only"],
        expires_after=dt.timedelta(hours=4), repo="acme/app", number=3, title="t", now=T0,
    )  # fmt: skip
    channel, ts = SlackNotifier(client, signer).post_request(
        opened.request, policy.groups["senior"], "C0APPROVALS"
    )
    workflow.set_message(session, opened.request.id, channel, ts)
    assert (opened.request.channel, opened.request.message_ts) == (channel, ts)
