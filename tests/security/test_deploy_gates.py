"""Deploy gates that failed open: a gate for `production` did not hold a deploy to GitHub's
`Production`, and an environment without a gate was approved ("no gate for ...")."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.conftest import POLICY, PROJECT, REPO, Harness, manifest, wait_for
from e2e.deploys import answers, main_head, pipeline_payload, request_deploy

from standins.gitrepo import GitRepo


def test_a_deploy_to_Production_is_held_by_the_gate_for_production(
    harness: Harness, repo: GitRepo
) -> None:
    sha = main_head(repo)
    run_id = request_deploy(harness, sha, "Production")
    message = harness.request_message("C0DEPLOYS")  # the production gate asks in Slack
    harness.settled()
    assert answers(harness, run_id) == []  # held: nobody approved yet
    harness.click(message, "U0ALICE")
    [answer] = wait_for(lambda: answers(harness, run_id), what="the gate's answer")
    assert (answer["state"], answer["environment_name"]) == ("approved", "Production")


def test_a_deploy_to_an_environment_without_a_gate_is_rejected_and_reported(
    harness: Harness, repo: GitRepo
) -> None:
    sha = main_head(repo)
    run_id = request_deploy(harness, sha, "prod")  # a typo, or a new environment
    [answer] = wait_for(lambda: answers(harness, run_id), what="the ungated answer")
    assert answer["state"] == "rejected"
    assert "no gate for prod" in answer["comment"]
    [held] = wait_for(lambda: harness.audit("deploy.held"), what="the deploy.held event")
    assert (held.subject, held.sha, held.decision) == (f"github:{REPO}@prod", sha, "rejected")


def test_a_gitlab_manual_deploy_to_an_environment_without_a_gate_stays_unplayed(
    harness: Harness, tmp_path: Any
) -> None:
    git = GitRepo(tmp_path / "gl.git")
    sha = git.commit("main", {"deploy/production/app.yaml": manifest()}, "initial")
    harness.gitlab.add_project(PROJECT, git)
    job = harness.gitlab.add_manual_job(PROJECT, sha, name="deploy-qa", environment="qa")
    payload = pipeline_payload(harness.gitlab, sha, job.id)
    payload["builds"][0]["environment"]["name"] = "qa"
    harness.send_gitlab("Pipeline Hook", payload)
    wait_for(lambda: harness.audit("deploy.held"), what="the held deploy's audit event")
    harness.settled()
    assert job.status == "manual"
    [held] = harness.audit("deploy.held")
    assert held.subject == f"gitlab:{PROJECT}@qa" and "no gate for qa" in held.detail["reason"]


ALLOWING = POLICY.replace("deploys:\n", "deploys:\n  default: allow\n", 1)


@pytest.mark.parametrize("policy_text", [ALLOWING], ids=["default-allow"])
def test_the_admin_may_let_ungated_environments_through(
    harness: Harness, repo: GitRepo, policy_text: str
) -> None:
    sha = main_head(repo)
    run_id = request_deploy(harness, sha, "staging")
    [answer] = wait_for(lambda: answers(harness, run_id), what="the ungated answer")
    assert answer["state"] == "approved" and "deploys.default allows" in answer["comment"]
    assert harness.audit("deploy.held") == []


def test_a_repository_policy_cannot_let_its_ungated_deploys_through(
    harness: Harness, repo: GitRepo
) -> None:
    sha = repo.commit("main", {".changegate.yml": "version: 1\ndeploys:\n  default: allow\n"},
                      "let everything through")  # fmt: skip
    run_id = request_deploy(harness, sha, "staging")
    [answer] = wait_for(lambda: answers(harness, run_id), what="the ungated answer")
    assert answer["state"] == "rejected"
