"""Slack interactions from another workspace: the signing secret is the app's, shared by
every workspace it is installed in, so a click signed correctly but sent from another
workspace (`team.id` not the installed one) named a user id that means someone else."""

from __future__ import annotations

import time
import uuid

from e2e.conftest import Harness, wait_for
from e2e.deploys import answers, protection_rule

from bot.slack.interactions import APPROVE_ACTION

from standins.gitrepo import GitRepo
from standins.slack import block_actions


def click_from(harness: Harness, message: object, user: str, team: str) -> None:
    actions = next(b for b in message.blocks if b["type"] == "actions")  # type: ignore[attr-defined]
    value = actions["elements"][0]["value"]
    payload = block_actions(
        user=user,
        value=value,
        action_id=APPROVE_ACTION,
        channel=message.channel,  # type: ignore[attr-defined]
        ts=message.ts,  # type: ignore[attr-defined]
        trigger_id=f"{uuid.uuid4().int % 10**11}.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        action_ts=f"{time.time():.6f}",
        style=None,
    )
    payload["team"] = {"id": team, "domain": "elsewhere"}
    payload["user"]["team_id"] = team
    assert harness.interact(payload).status_code == 200  # Slack is always answered
    harness.settled()


def test_a_click_from_another_workspace_is_refused(harness: Harness, repo: GitRepo) -> None:
    sha = repo.branch_sha("main")
    assert sha is not None
    payload, run_id = protection_rule(harness, sha, "production")
    harness.send_github("deployment_protection_rule", payload)
    message = harness.request_message("C0DEPLOYS")
    click_from(harness, message, "U0ALICE", "T0ELSEWHERE")  # "U0ALICE" over there
    assert answers(harness, run_id) == []
    assert [r.state for r in harness.requests(sha=sha)] == ["pending"]
    assert harness.audit("approval.approve") == []

    click_from(harness, message, "U0ALICE", "T0CHANGEGATE")  # the installed workspace
    [answer] = wait_for(lambda: answers(harness, run_id), what="the gate's answer")
    assert answer["state"] == "approved"
