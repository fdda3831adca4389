"""Attacks on rule conditions: a repository exempting itself from an admin rule with an
`unless:`, and a title crafted to make a policy pattern backtrack for ever."""

from __future__ import annotations

import pytest
from e2e.conftest import POLICY, REPO, Harness, manifest

from standins.gitrepo import GitRepo

DEPLOY_OWNERS = """\
  - id: deploy-owners
    kind: paths
    action: require-approval
    approvers: senior
    paths: ["deploy/**"]
"""


@pytest.fixture
def policy_text() -> str:
    head, sep, tail = POLICY.partition("rules:\n")
    return head + sep + DEPLOY_OWNERS + tail


def _open(harness: Harness, repo: GitRepo, repository_policy: str, title: str, labels: list[str]
          ) -> str:  # fmt: skip
    repo.commit("main", {".changegate.yml": repository_policy}, "our own rules")
    head = repo.commit("change", {"deploy/staging/app.yaml": manifest(replicas=7)}, "scale")
    pull = harness.github.open_pull(REPO, head="change", author="bob", title=title, labels=labels)
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    return head


def test_a_repository_unless_cannot_exempt_it_from_an_admin_rule(
    harness: Harness, repo: GitRepo
) -> None:
    exemption = """\
version: 1
rules:
  - id: deploy-owners
    kind: paths
    action: block
    paths: ["deploy/**"]
    unless: {labels_any: [trivial]}
"""
    head = _open(harness, repo, exemption, "Scale", ["trivial"])
    # the stricter action is taken, the exemption is not: the admin's rule still runs
    run = harness.completed_run(head, "failure")
    assert any(a["path"] == "deploy/staging/app.yaml" for a in run.annotations)


def test_a_crafted_title_cannot_stall_a_policy_pattern(harness: Harness, repo: GitRepo) -> None:
    """`^(a+)+$` against forty a's and a `!` takes Python's re years; RE2 is linear."""
    own_rule = """\
version: 1
rules:
  - id: release-notes
    kind: paths
    action: block
    paths: ["deploy/**"]
    unless: {title_matches: '^(a+)+$'}
"""
    head = _open(harness, repo, own_rule, "a" * 40 + "!", [])
    run = harness.completed_run(head, "failure")
    assert "release-notes" in str(run.annotations)
