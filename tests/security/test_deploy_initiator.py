"""The deploy's real initiator: a deployment created by `github-actions[bot]` for a workflow
alice started let alice approve it in Slack. Whoever started the run (or re-ran it), and
whoever wrote the pull/merge request being deployed, cannot approve the deploy."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.conftest import PROJECT, REPO, Harness, manifest, wait_for
from e2e.deploys import answers, pipeline_payload, protection_rule

from standins.gitrepo import GitRepo

BOT = "github-actions[bot]"


@pytest.mark.parametrize(
    ("actor", "triggering_actor"),
    [("alice", None), ("carol", "alice")],
    ids=["alice-started-the-run", "alice-re-ran-it"],
)
def test_who_started_the_workflow_run_cannot_approve_its_deploy(
    harness: Harness, repo: GitRepo, actor: str, triggering_actor: str | None
) -> None:
    sha = repo.branch_sha("main")
    assert sha is not None
    payload, run_id = protection_rule(harness, sha, "production", creator=BOT, actor=actor,
                                      triggering_actor=triggering_actor)  # fmt: skip
    harness.send_github("deployment_protection_rule", payload)
    message = harness.request_message("C0DEPLOYS")
    harness.click(message, "U0ALICE")  # people: github alice = slack U0ALICE
    assert "You started this deploy" in harness.ephemerals_for("U0ALICE")[-1]
    assert answers(harness, run_id) == []
    [request] = harness.requests(sha=sha)
    assert ["github", "alice"] in request.details["initiators"]
    harness.click(message, "U0DAVE")  # a senior through the S0SRELEADS user group
    [answer] = wait_for(lambda: answers(harness, run_id), what="the gate's answer")
    assert answer["state"] == "approved" and "U0ALICE" not in answer["comment"]


def test_the_author_of_the_deployed_pull_request_cannot_approve_its_deploy(
    harness: Harness, repo: GitRepo
) -> None:
    repo.commit("fix", {"README.md": "# fixed\n"}, "a fix")
    pull = harness.github.open_pull(REPO, head="fix", author="alice", title="Fix")
    sha = harness.github.merge_pull(REPO, pull.number)
    payload, run_id = protection_rule(harness, sha, "production", creator=BOT, actor="bob")
    harness.send_github("deployment_protection_rule", payload)
    message = harness.request_message("C0DEPLOYS")
    harness.click(message, "U0ALICE")
    assert "You started this deploy" in harness.ephemerals_for("U0ALICE")[-1]
    harness.settled()
    assert answers(harness, run_id) == []


def test_the_merge_request_author_cannot_approve_a_gitlab_deploy_of_it(
    harness: Harness, tmp_path: Any
) -> None:
    git = GitRepo(tmp_path / "gl.git")
    git.commit("main", {"deploy/production/app.yaml": manifest()}, "initial")
    sha = git.commit("bump", {"deploy/production/app.yaml": manifest(replicas=3)}, "bump")
    harness.gitlab.add_project(PROJECT, git)
    harness.gitlab.open_mr(PROJECT, "bump", title="Bump", author="alice")
    job = harness.gitlab.add_manual_job(PROJECT, sha, name="deploy-production",
                                        environment="production")  # fmt: skip
    harness.send_gitlab("Pipeline Hook", pipeline_payload(harness.gitlab, sha, job.id, "dana"))
    message = harness.request_message("C0DEPLOYS")
    harness.click(message, "U0ALICE")
    assert "You started this deploy" in harness.ephemerals_for("U0ALICE")[-1]
    harness.settled()
    assert job.status == "manual"
    harness.click(message, "U0DAVE")
    wait_for(lambda: job.status == "pending", what="the manual job to be played")


def test_a_deploy_whose_workflow_run_cannot_be_read_is_rejected(
    harness: Harness, repo: GitRepo
) -> None:
    sha = repo.branch_sha("main")
    assert sha is not None
    payload, run_id = protection_rule(harness, sha, "production", creator=BOT, actor="alice")
    harness.github.workflow_runs.pop(run_id)  # the App lacks `actions: read`, say
    harness.send_github("deployment_protection_rule", payload)
    [answer] = wait_for(lambda: answers(harness, run_id), what="the gate's answer")
    assert answer["state"] == "rejected"
    assert f"cannot read workflow run {run_id}" in answer["comment"]
