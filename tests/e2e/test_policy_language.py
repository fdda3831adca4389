"""The policy language through the real server: a `paths` rule on `deploy/**` asks its
owners in Slack and an approval there turns the check green; its `if:` / `unless:`
decide whether it runs, and the verdict page says which conditions held."""

from __future__ import annotations

import pytest

from .conftest import POLICY, REPO, Harness, manifest
from standins.gitrepo import GitRepo

DEPLOY_OWNERS = """\
  - id: deploy-owners
    kind: paths
    action: require-approval
    approvers: senior
    slack_channel: C0DEPLOYOWNERS
    paths: ["deploy/**"]
    exclude: ["deploy/**/*.md"]
    if:
      target_branch: [main]
    unless:
      labels_any: [no-deploy-review]
"""


@pytest.fixture
def policy_text() -> str:
    head, sep, tail = POLICY.partition("rules:\n")
    return head + sep + DEPLOY_OWNERS + tail


def _open(harness: Harness, repo: GitRepo, branch: str, labels: list[str]) -> str:
    harness.slack.state.channels.add("C0DEPLOYOWNERS")  # the channel exists in the workspace
    head = repo.commit(branch, {"deploy/staging/app.yaml": manifest(replicas=5)}, "scale")
    pull = harness.github.open_pull(REPO, head=branch, author="bob", labels=labels)
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    return head


def _verdict_page(harness: Harness, details_url: str | None) -> dict:
    assert details_url is not None
    path = details_url.removeprefix("https://changegate.example.com")
    return harness.http.get(f"{harness.server.url}{path}", params={"format": "json"}).json()


def test_a_deploy_paths_rule_is_approved_in_slack(harness: Harness, repo: GitRepo) -> None:
    head = _open(harness, repo, "scale", labels=["infra"])
    run = harness.completed_run(head, "action_required")
    assert run.title == "Approval required (deploy-owners)"
    message = harness.request_message("C0DEPLOYOWNERS")
    assert "deploy/staging/app.yaml" in str(message.blocks)
    page = _verdict_page(harness, run.details_url)
    assert page["conditions"] == [
        {
            "rule": "deploy-owners",
            "applies": True,
            "checks": [
                "if target_branch ['main']: held (main)",
                "unless labels_any ['no-deploy-review']: did not hold (infra)",
            ],
        }
    ]
    html = harness.http.get(
        harness.server.url + run.details_url.removeprefix("https://changegate.example.com")  # type: ignore[union-attr]
    ).text
    assert "Rule conditions" in html and "deploy-owners" in html

    harness.click(message, "U0ALICE")
    assert harness.completed_run(head, "success").conclusion == "success"


def test_the_unless_label_switches_the_rule_off_and_says_so(
    harness: Harness, repo: GitRepo
) -> None:
    head = _open(harness, repo, "docs", labels=["no-deploy-review"])
    run = harness.completed_run(head, "success")
    harness.settled()
    assert harness.messages("C0DEPLOYOWNERS") == []
    (outcome,) = _verdict_page(harness, run.details_url)["conditions"]
    assert outcome["applies"] is False
    assert "unless labels_any ['no-deploy-review']: held (no-deploy-review)" in outcome["checks"]
