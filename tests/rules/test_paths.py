"""`kind: paths`: the CODEOWNERS / policy-bot "changed files" rule."""

from __future__ import annotations

import textwrap

import pytest

from bot.change import Action, Approval, Decision
from bot.policy.evaluate import evaluate
from bot.policy.schema import PolicyError, load_policy_text
from bot.views.memory import MemoryView

POLICY = load_policy_text(
    textwrap.dedent(
        """\
        version: 1
        groups:
          sre: {github: [alice, carol], slack: [U0ALICE]}
        rules:
          - id: deploy-owners
            kind: paths
            action: require-approval
            approvers: sre
            min_approvals: 2
            slack_channel: C0DEPLOY
            paths: ["deploy/**"]
            exclude: ["deploy/**/*.md"]
          - id: no-vendored
            kind: paths
            action: block
            paths: ["vendor/**"]
          - id: ci-files
            kind: paths
            action: warn
            paths: [".github/workflows/**"]
        """
    ),
    "policy.yml",
)


def _view(head: dict[str, str], base: dict[str, str]) -> MemoryView:
    return MemoryView(head=head, base=base, author="bob", forge="github")


def test_a_governed_file_needs_the_rules_approvers() -> None:
    view = _view({"deploy/app.yaml": "a: 2\n", "src/x.py": "1"}, {"deploy/app.yaml": "a: 1\n"})
    verdict = evaluate(POLICY, view)
    assert [(f.rule, f.path, f.line, f.action) for f in verdict.findings] == [
        ("deploy-owners", "deploy/app.yaml", 1, Action.REQUIRE_APPROVAL)
    ]
    assert verdict.decision is Decision.APPROVAL_REQUIRED
    (status,) = verdict.approvals
    assert (status.group, status.required, status.granted) == ("sre", 2, 0)
    approvals = [Approval("github", "alice", "head"), Approval("github", "carol", "head")]
    assert evaluate(POLICY, view, approvals).decision is Decision.PASS
    assert POLICY.rule("deploy-owners").slack_channel == "C0DEPLOY"  # type: ignore[union-attr]


def test_excluded_and_unmatched_files_are_not_governed() -> None:
    view = _view({"deploy/README.md": "new", "docs/deploy.md": "x"}, {})
    assert evaluate(POLICY, view).findings == ()


def test_deleting_or_moving_a_governed_file_counts_at_its_old_path() -> None:
    deleted = evaluate(POLICY, _view({}, {"deploy/app.yaml": "a: 1\n"}))
    assert [(f.path, f.line) for f in deleted.findings] == [("deploy/app.yaml", None)]
    assert "deleted" in deleted.findings[0].message


def test_block_and_warn_actions() -> None:
    verdict = evaluate(
        POLICY, _view({"vendor/lib.py": "x", ".github/workflows/ci.yml": "on: push\n"}, {})
    )
    assert {(f.rule, f.action) for f in verdict.findings} == {
        ("no-vendored", Action.BLOCK),
        ("ci-files", Action.WARN),
    }
    assert verdict.decision is Decision.FAIL


def test_excludes_are_checked() -> None:
    with pytest.raises(PolicyError) as err:
        load_policy_text(
            "version: 1\nrules:\n  - id: p\n    kind: paths\n    action: warn\n    exclude: ['']\n",
            "p.yml",
        )
    text = str(err.value)
    assert "p.yml:6:14: rules.0.exclude: an empty glob matches nothing" in text
