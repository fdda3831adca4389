"""Approvals carried over to a merge queue's group count for the files their request brought."""

from __future__ import annotations

import textwrap

from bot.change import Approval, Decision
from bot.policy.carryover import WHOLE_CHANGE, covered_paths, covering
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

POLICY = load_policy_text(
    textwrap.dedent(
        """\
        version: 1
        environments:
          production: {paths: ["deploy/production/**"]}
        groups:
          senior: {github: ["alice", "carol"]}
        rules:
          - id: prod-only
            kind: prod-only-change
            action: require-approval
            approvers: senior
          - id: described
            kind: migration-playbook
            action: require-approval
            approvers: senior
            paths: ["db/migrate/**"]
        """
    ),
    "policy.yml",
)

#: a group of two requests: one changed app.yaml, the other db.yaml
GROUP = MemoryView(
    head={"deploy/production/app.yaml": "replicas: 3\n", "deploy/production/db.yaml": "size: 2\n"},
    base={"deploy/production/app.yaml": "replicas: 2\n", "deploy/production/db.yaml": "size: 1\n"},
    author="bob",
    forge="github",
)


def carried(user: str, *paths: str) -> Approval:
    return Approval("github", user, "head", via="review", covers=frozenset(paths))


def test_a_request_covers_the_group_files_holding_what_it_brought() -> None:
    group = {"a.yaml": "blob-a2", "b.yaml": "blob-b2", "gone.yaml": None, "moved.yaml": None}
    brought = {"a.yaml": "blob-a2", "b.yaml": "blob-b1", "gone.yaml": None, "other.yaml": "x"}
    # b.yaml was changed again after the request; moved.yaml it never touched
    assert covered_paths(group, brought) == {"a.yaml", "gone.yaml"}


def test_a_request_that_brought_every_file_covers_the_change_as_a_whole() -> None:
    group = {"a.yaml": "blob-a2", "gone.yaml": None}
    assert covered_paths(group, {**group, "reverted.yaml": "x"}) == {
        "a.yaml",
        "gone.yaml",
        WHOLE_CHANGE,
    }
    assert covered_paths({}, {}) == frozenset()  # an empty group: nothing to vouch for


def test_a_carried_approval_counts_only_for_the_files_its_request_brought() -> None:
    only_app = evaluate(POLICY, GROUP, [carried("alice", "deploy/production/app.yaml")])
    assert only_app.decision is Decision.APPROVAL_REQUIRED
    assert only_app.approvals[0].granted == 0  # db.yaml: nobody's

    both = [
        carried("alice", "deploy/production/app.yaml"),
        carried("carol", "deploy/production/db.yaml"),
    ]
    verdict = evaluate(POLICY, GROUP, both)
    assert verdict.decision is Decision.PASS
    assert verdict.approvals[0].granted == 1  # each file by one senior


def test_an_approval_for_the_whole_change_still_covers_every_file() -> None:
    approvals = [
        carried("alice", "deploy/production/app.yaml"),
        Approval("github", "carol", "head"),
    ]
    verdict = evaluate(POLICY, GROUP, approvals)
    assert verdict.decision is Decision.PASS
    assert verdict.approvals[0].approvers == ("carol (github)",)  # the least approved file


def test_a_request_that_brought_the_whole_group_vouches_for_every_finding() -> None:
    partial, whole = carried("alice", "a.yaml"), carried("carol", "a.yaml", WHOLE_CHANGE)
    everyone = Approval("github", "dave", "head")
    assert covering([partial, whole, everyone], "a.yaml") == [partial, whole, everyone]
    # a finding about the change itself, or on a file the group did not change
    assert covering([partial, whole, everyone], WHOLE_CHANGE) == [whole, everyone]
    assert covering([partial, whole, everyone], "kustomization.yaml") == [whole, everyone]
