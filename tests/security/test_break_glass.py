"""Break-glass abuse: the pull request's author (or the deploy's initiator) broke glass on
their own change, and a repository's `.changegate.yml` defined the `emergency` group that
the worker then trusted."""

from __future__ import annotations

import pytest
from e2e.conftest import POLICY, Harness, manifest, wait_for
from e2e.deploys import answers, protection_rule
from e2e.test_github_flow import open_pull

from bot.slack.interactions import BREAK_GLASS_ACTION, BREAK_GLASS_MODAL

from standins.gitrepo import GitRepo
from standins.slack import Message, view_submission

#: bob (slack U0BOB) is an emergency responder too
BOB_ON_CALL = POLICY.replace(
    '  emergency:\n    slack: ["U0OPS"]', '  emergency:\n    slack: ["U0OPS", "U0BOB"]'
)


def submit_reason(harness: Harness, message: Message, user: str, sha: str) -> None:
    """The break-glass modal's submission, as if Slack had opened the modal for `user`
    (the button refuses to open it: this is the guard behind the button)."""
    slack = harness.server.app.state.governor.slack
    actions = next(b for b in message.blocks if b["type"] == "actions")
    request_id = actions["elements"][0]["value"].split(".")[0]
    metadata = slack.signer.seal({"request": request_id, "sha": sha, "channel": message.channel,
                                      "ts": message.ts, "kind": "break-glass"})  # fmt: skip
    submission = view_submission(user=user, callback_id=BREAK_GLASS_MODAL,
                                 private_metadata=metadata, reason="my own change, urgent")  # fmt: skip
    assert harness.interact(submission).status_code == 200
    harness.settled()


@pytest.mark.parametrize("policy_text", [BOB_ON_CALL], ids=["bob-on-call"])
def test_the_author_cannot_break_glass_on_their_own_pull_request(
    harness: Harness, repo: GitRepo, policy_text: str
) -> None:
    _number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=9)})
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")
    views = len(harness.slack.views)
    harness.click(message, "U0BOB", BREAK_GLASS_ACTION)  # bob wrote the pull request
    assert len(harness.slack.views) == views  # no modal
    assert "you cannot break glass" in harness.ephemerals_for("U0BOB")[-1]
    submit_reason(harness, message, "U0BOB", head)
    assert "you cannot break glass" in harness.ephemerals_for("U0BOB")[-1]
    assert harness.audit("break_glass") == []
    assert [r.state for r in harness.requests(sha=head)] == ["pending"]
    assert [r.detail["why"] for r in harness.audit("break_glass.refused")] != []


@pytest.mark.parametrize("policy_text", [BOB_ON_CALL], ids=["bob-on-call"])
def test_the_initiator_cannot_break_glass_on_their_own_deploy(
    harness: Harness, repo: GitRepo, policy_text: str
) -> None:
    sha = repo.branch_sha("main")
    assert sha is not None
    payload, run_id = protection_rule(harness, sha, "production", creator="bob")
    harness.send_github("deployment_protection_rule", payload)
    message = harness.request_message("C0DEPLOYS")
    harness.click(message, "U0BOB", BREAK_GLASS_ACTION)
    assert "you cannot break glass" in harness.ephemerals_for("U0BOB")[-1]
    submit_reason(harness, message, "U0BOB", sha)
    assert answers(harness, run_id) == []
    assert harness.audit("break_glass") == []
    # another responder can
    harness.click(message, "U0OPS", BREAK_GLASS_ACTION)
    submit_reason(harness, message, "U0OPS", sha)
    [answer] = wait_for(lambda: answers(harness, run_id), what="the break-glass answer")
    assert answer["state"] == "approved"


#: the admin policy names no `emergency` group (break-glass off)
NO_EMERGENCY = POLICY.replace('  emergency:\n    slack: ["U0OPS"]\n', "").replace(
    "break_glass:\n  group: emergency\n  retro_review_within: 24h\n", ""
)


@pytest.mark.parametrize("policy_text", [NO_EMERGENCY], ids=["no-emergency-group"])
def test_a_repository_cannot_define_the_emergency_group(
    harness: Harness, repo: GitRepo, policy_text: str
) -> None:
    sha = repo.commit("main", {".changegate.yml": 'version: 1\ngroups:\n  emergency:\n'
                               '    slack: ["U0MALLORY"]\n'}, "we are the emergency now")  # fmt: skip
    payload, run_id = protection_rule(harness, sha, "production", creator="bob")
    harness.send_github("deployment_protection_rule", payload)
    message = harness.request_message("C0DEPLOYS")
    views = len(harness.slack.views)
    harness.click(message, "U0MALLORY", BREAK_GLASS_ACTION)
    assert len(harness.slack.views) == views
    assert "Only members of emergency" in harness.ephemerals_for("U0MALLORY")[-1]
    submit_reason(harness, message, "U0MALLORY", sha)
    assert harness.audit("break_glass") == []
    assert answers(harness, run_id) == []
