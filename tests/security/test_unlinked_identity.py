"""The author approving through an unlinked identity: group `senior` lists GitHub `alice`
and Slack `U0ALICE` with no `people:` entry linking them, and alice's own pull request was
approved by `U0ALICE`. That approval must not count, and the verdict page says why."""

from __future__ import annotations

import urllib.parse

import pytest
from e2e.conftest import POLICY, REPO, Harness, manifest

from standins.gitrepo import GitRepo

UNLINKED = POLICY.replace(
    'senior:\n    github: ["alice"]\n    gitlab: ["alice"]\n    slack: ["U0ALICE", "S0SRELEADS"]',
    'senior:\n    github: ["alice"]\n    slack: ["U0ALICE"]',
).replace(
    "people:\n  - name: alice\n    github: alice\n    gitlab: alice\n    slack: U0ALICE\n",
    "people:\n",
)


@pytest.fixture
def policy_text() -> str:
    assert "U0ALICE" in UNLINKED and "name: alice" not in UNLINKED
    return UNLINKED


def test_author_approving_own_change_through_an_unlinked_slack_identity_does_not_count(
    harness: Harness, repo: GitRepo
) -> None:
    head = repo.commit("change", {"deploy/production/app.yaml": manifest(replicas=7)}, "scale")
    pull = harness.github.open_pull(REPO, head="change", author="alice", title="Scale")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")

    harness.click(message, "U0ALICE")
    assert "does not count" in harness.ephemerals_for("U0ALICE")[-1]
    run = harness.completed_run(head)
    assert run.conclusion == "action_required"

    page = harness.http.get(harness.server.url + urllib.parse.urlsplit(run.details_url).path)
    assert page.status_code == 200
    assert "Did not count" in page.text
    assert "U0ALICE (slack)" in page.text
    assert "they may be one person" in page.text
