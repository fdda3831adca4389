"""Who may decide a request and what an approve or a reject does: members only, never the
author, people counted (not clicks or systems), one reject rejects, every step audited."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import audit
from bot.approvals.decisions import Ballot, Outcome, record_decision, refresh
from bot.approvals.models import AuditRecord, RequestState
from bot.approvals.queries import approvals_for, rejection_for
from bot.approvals.requests import (
    get_request,
)
from bot.change import Approval
from bot.policy.approvers import Directory
from bot.policy.schema import Policy

from .conftest import SHA1, SHA2, SRE_LEADS, SUBJECT, T0, open_change


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
    outcome = record_decision(
        session, policy, Ballot(request.id, SHA1, actor, "approve"), directory=directory, now=T0
    )
    assert outcome.accepted is accepted
    assert says in outcome.message
    expected = RequestState.APPROVED if accepted else RequestState.PENDING
    assert request.state == expected
    users = [a.user for a in approvals_for(session, SUBJECT, SHA1)]
    assert users == ([actor[1]] if accepted else [])


def test_button_for_another_commit_is_refused(session: Session, policy: Policy) -> None:
    request = open_change(session, SHA1).request
    outcome = record_decision(
        session, policy, Ballot(request.id, SHA2, ("slack", "U0ALICE"), "approve"), now=T0
    )
    assert not outcome.accepted and "names commit 2222222" in outcome.message


def test_min_approvals_counts_people_not_clicks_or_systems(
    session: Session, policy: Policy
) -> None:
    request = open_change(session, min_approvals=2).request
    alice_on_github = [Approval("github", "alice", SHA1, via="review")]
    first = record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0ALICE"), "approve"),
        other_approvals=alice_on_github,
        now=T0,
    )
    assert first.accepted and not first.settled and "1/2" in first.message
    twice = record_decision(
        session, policy, Ballot(request.id, SHA1, ("slack", "U0ALICE"), "approve"), now=T0
    )
    assert not twice.accepted and "already decided" in twice.message
    carol = record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0CAROL"), "approve"),
        other_approvals=alice_on_github,
        now=T0,
    )
    assert carol.settled and request.state == RequestState.APPROVED
    assert set(carol.approvers) == {"U0ALICE (slack)", "U0CAROL (slack)"}
    late = record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0DAVE"), "approve"),
        directory=SRE_LEADS,
        now=T0,
    )
    assert not late.accepted and "already approved" in late.message


def test_forge_review_alone_settles_the_request(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    outcome = refresh(
        session, policy, request.id, other_approvals=[Approval("github", "carol", SHA1)], now=T0
    )
    assert outcome.settled and request.state == RequestState.APPROVED


def test_reject_with_reason(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    outcome = record_decision(
        session,
        policy,
        Ballot(
            request.id,
            SHA1,
            ("slack", "U0ALICE"),
            "reject",
            "replicas must change in staging first",
        ),
        now=T0,
    )
    assert outcome.accepted and outcome.settled
    assert request.state == RequestState.REJECTED
    rejection = rejection_for(session, SUBJECT, SHA1)
    assert rejection is not None and rejection.reason == "replicas must change in staging first"
    assert "replicas must change" in (request.state_reason or "")


def test_a_click_past_the_deadline_expires_the_request(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    outcome = record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0ALICE"), "approve"),
        now=T0 + dt.timedelta(hours=4, seconds=1),
    )
    assert not outcome.accepted and "expired" in outcome.message
    assert request.state == RequestState.EXPIRED


def test_every_step_is_audited_and_the_chain_holds(session: Session, policy: Policy) -> None:
    request = open_change(session).request
    record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0MALLORY"), "approve", delivery_id="slack:abc"),
        now=T0,
    )
    record_decision(
        session,
        policy,
        Ballot(request.id, SHA1, ("slack", "U0ALICE"), "approve", delivery_id="slack:def"),
        now=T0,
    )
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
    outcomes: list[Outcome] = []

    def approve(user: str) -> None:
        with Session(shared_engine) as session:
            barrier.wait()
            outcomes.append(
                record_decision(
                    session, policy, Ballot(request_id, SHA1, ("slack", user), "approve"), now=T0
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
        request = get_request(session, request_id)
        assert request is not None and request.state == RequestState.APPROVED
        assert audit.verify(session) == []
