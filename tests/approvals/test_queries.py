"""What the store tells `evaluate()`: approvals given in Slack add up with the forge's."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.approvals.decisions import Ballot, record_decision
from bot.approvals.queries import approvals_for
from bot.approvals.requests import (
    RequestSpec,
    open_request,
)
from bot.change import Decision
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy
from bot.views.memory import MemoryView

from .conftest import SUBJECT, T0


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
    request = open_request(
        session,
        RequestSpec(
            subject=SUBJECT,
            sha="head",
            group="senior",
            rules=["prod-only"],
            expires_after=dt.timedelta(hours=4),
            author=("github", "bob"),
        ),
        now=T0,
    )
    record_decision(
        session, policy, Ballot(request.request.id, "head", ("slack", "U0BOB"), "approve"), now=T0
    )
    assert evaluate(policy, view, approvals_for(session, SUBJECT, "head")).decision is (
        Decision.APPROVAL_REQUIRED
    )
    record_decision(
        session, policy, Ballot(request.request.id, "head", ("slack", "U0ALICE"), "approve"), now=T0
    )
    after = evaluate(policy, view, approvals_for(session, SUBJECT, "head"))
    assert after.decision is Decision.PASS
    assert after.approvals[0].approvers == ("U0ALICE (slack)",)
