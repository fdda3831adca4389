"""The verdict rules of SPEC.md, to the letter, and who counts as an approver."""

from __future__ import annotations

import textwrap

import pytest

from bot.change import Action, Approval, Decision
from bot.policy.approvers import ApprovalTerms, Directory, tally
from bot.policy.evaluate import evaluate
from bot.policy.merge import merge_policies
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

POLICY = load_policy_text(
    textwrap.dedent(
        """\
        version: 1
        environments:
          production: {paths: ["deploy/production/**"]}
          staging: {paths: ["deploy/staging/**"]}
        groups:
          senior:
            github: ["alice", "@acme/sre-leads"]
            slack: ["U0ALICE", "S0LEADS"]
        people:
          - {name: Alice, github: alice, slack: U0ALICE}
          - {name: Bob, github: bob, slack: U0BOB}
        rules:
          - id: prod-only
            kind: prod-only-change
            action: require-approval
            approvers: senior
            min_approvals: 2
          - id: playbook
            kind: migration-playbook
            action: block
        """
    ),
    "policy.yml",
)

PROD_ONLY = MemoryView(
    head={"deploy/production/app.yaml": "replicas: 3\n"},
    base={"deploy/production/app.yaml": "replicas: 2\n"},
    author="bob",
    forge="github",
)


def test_prod_only_change_needs_approval() -> None:
    verdict = evaluate(POLICY, PROD_ONLY)
    assert verdict.decision is Decision.APPROVAL_REQUIRED
    assert [f.path for f in verdict.findings] == ["deploy/production/app.yaml"]
    assert verdict.approvals[0].as_dict() == {
        "rule": "prod-only",
        "group": "senior",
        "required": 2,
        "granted": 0,
    }


def test_change_to_staging_too_is_not_prod_only() -> None:
    view = MemoryView(
        head={"deploy/production/app.yaml": "a: 2\n", "deploy/staging/app.yaml": "a: 2\n"},
        base={"deploy/production/app.yaml": "a: 1\n", "deploy/staging/app.yaml": "a: 1\n"},
    )
    assert evaluate(POLICY, view).decision is Decision.PASS


def test_approvals_on_github_and_slack_add_up_and_one_person_counts_once() -> None:
    team = Directory(members={"@acme/sre-leads": frozenset({"carol"})})
    approvals = [
        Approval("github", "alice", "head", via="review"),
        Approval("slack", "U0ALICE", "head", via="slack"),  # Alice again
        Approval("github", "carol", "head", via="review"),  # via the team
    ]
    verdict = evaluate(POLICY, PROD_ONLY, approvals, directory=team)
    assert verdict.decision is Decision.PASS
    assert verdict.approvals[0].granted == 2


@pytest.mark.parametrize(
    ("approval", "why"),
    [
        (Approval("github", "alice", "older-sha"), "not the head commit"),
        (Approval("github", "mallory", "head"), "not a member of senior"),
        (Approval("slack", "U0BOB", "head"), "the author cannot approve"),
    ],
)
def test_approvals_that_do_not_count_say_why(approval: Approval, why: str) -> None:
    policy = POLICY.model_copy(
        update={
            "groups": {
                "senior": POLICY.groups["senior"].model_copy(update={"slack": ["U0ALICE", "U0BOB"]})
            }
        }
    )
    counted = tally(
        policy, "senior", [approval], ApprovalTerms(head="head", author=("github", "bob"))
    )
    assert counted.granted == ()
    assert why in counted.ignored[0][1]


def test_block_wins_over_approval_and_warn_never_decides() -> None:
    view = MemoryView(
        head={"db/migrate/001_add.sql": "alter table x;"},
        base={},
        description="no link here",
    )
    verdict = evaluate(POLICY, view)
    assert verdict.decision is Decision.FAIL
    assert verdict.findings[0].action is Action.BLOCK
    warn_only = POLICY.model_copy(
        update={"rules": [POLICY.rules[1].model_copy(update={"action": Action.WARN})]}
    )
    assert evaluate(warn_only, view).decision is Decision.PASS


def test_findings_are_sorted_by_path_line_rule() -> None:
    view = MemoryView(
        head={"db/migrate/b.sql": "x", "db/migrate/a.sql": "x", "deploy/production/z": "1"},
        base={"deploy/production/z": "0"},
    )
    paths = [f.path for f in evaluate(POLICY, view).findings]
    assert paths == sorted(paths)


def test_a_crashing_rule_is_a_warning_not_a_crash() -> None:
    policy = load_policy_text(
        "version: 1\nrules:\n  - {id: x, kind: prod-only-change, action: block}\n"
    )

    class Broken(MemoryView):
        def changed_files(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    verdict = evaluate(policy, Broken(head={}, base={}))
    assert verdict.decision is Decision.PASS
    assert "internal error" in verdict.findings[0].message


def test_repository_policy_only_tightens() -> None:
    repo_text = textwrap.dedent(
        """\
        version: 1
        groups:
          senior: {github: [mallory]}      # cannot redefine the admin's group
          platform: {github: [dave]}
        rules:
          - {id: playbook, kind: migration-playbook, action: warn}   # cannot loosen
          - {id: prod-only, kind: prod-only-change, action: block}   # may tighten
          - {id: extra, kind: unpinned-image, action: require-approval, approvers: platform}
        """
    )
    merged = merge_policies(POLICY, repo_text)
    actions = {r.id: r.action for r in merged.rules}
    assert actions == {
        "prod-only": Action.BLOCK,
        "playbook": Action.BLOCK,
        "extra": Action.REQUIRE_APPROVAL,
    }
    assert merged.groups["senior"].github == ["alice", "@acme/sre-leads"]
    assert "platform" in merged.groups
    assert merged.people == POLICY.people


def test_invalid_repository_policy_leaves_the_admin_policy_in_force() -> None:
    assert merge_policies(POLICY, "version: 1\nrules: [{id: x, kind: nope}]\n") is POLICY


def test_whole_file_and_line_findings_sort_together() -> None:
    """A finding about a whole file (line 1) and one on a line of the same file sort."""
    policy = load_policy_text(
        "version: 1\nenvironments:\n  production: {paths: ['deploy/production/**']}\n"
        "rules:\n  - {id: a, kind: prod-only-change, action: warn}\n"
        "  - {id: b, kind: unpinned-image, action: block}\n"
    )
    pod = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: redis\n"
    view = MemoryView(head={"deploy/production/pod.yaml": pod}, base={})
    findings = evaluate(policy, view).findings
    assert [(f.rule, f.line) for f in findings] == [("a", 1), ("b", 5)]


def test_a_repository_cannot_reclassify_the_admins_paths_to_dodge_a_rule() -> None:
    """The outage class prod-only-change exists for: a repository's policy names a
    `shadow` environment over the production paths, so that a production-only change
    would look exercised elsewhere. The admin's classification of those paths stands, and
    an environment for paths the admin left alone is not "another environment" to an
    admin rule either (issue 11.4)."""
    prod_only = MemoryView(
        head={"deploy/production/app.yaml": "replicas: 3\n"},
        base={"deploy/production/app.yaml": "replicas: 2\n"},
    )
    dodge = "version: 1\nenvironments:\n  shadow: {paths: ['deploy/production/**']}\n"
    merged = merge_policies(POLICY, dodge)
    assert "shadow" in merged.environments
    assert [f.rule for f in evaluate(merged, prod_only).findings] == ["prod-only"]
    # a repository's own environment for paths the admin did not classify does not count
    own = "version: 1\nenvironments:\n  qa: {paths: ['deploy/qa/**']}\n"
    with_qa = MemoryView(
        head={"deploy/production/app.yaml": "replicas: 3\n", "deploy/qa/app.yaml": "replicas: 3\n"},
        base={"deploy/production/app.yaml": "replicas: 2\n", "deploy/qa/app.yaml": "replicas: 2\n"},
    )
    assert [f.rule for f in evaluate(merge_policies(POLICY, own), with_qa).findings] == [
        "prod-only"
    ]
    assert [f.rule for f in evaluate(POLICY, with_qa).findings] == ["prod-only"]
