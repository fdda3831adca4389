"""Merging a repository's `.changegate.yml` into the admin policy: it may only tighten."""

from __future__ import annotations

import textwrap

from bot.change import Decision
from bot.policy.evaluate import evaluate
from bot.policy.merge import merge_policies
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

ADMIN = textwrap.dedent(
    """\
    version: 1
    environments:
      production: {paths: ["deploy/production/**"]}
      staging: {paths: ["deploy/staging/**"]}
    groups:
      senior: {github: [alice]}
      emergency: {slack: [U0OPS]}
    rules:
      - id: prod-only
        kind: prod-only-change
        action: require-approval
        approvers: senior
    """
)

SANDBOX = textwrap.dedent(
    """\
    version: 1
    environments:
      sandbox: {paths: ["sandbox/**"]}
    """
)


def _view(files: list[str]) -> MemoryView:
    return MemoryView({path: "x: 1\n" for path in files}, base={}, author="bob")


def test_a_repository_environment_is_not_another_environment_for_an_admin_rule() -> None:
    merged = merge_policies(load_policy_text(ADMIN), SANDBOX)
    assert "sandbox" in merged.environments
    verdict = evaluate(merged, _view(["deploy/production/app.yaml", "sandbox/x.txt"]))
    assert verdict.decision is Decision.APPROVAL_REQUIRED
    assert [f.path for f in verdict.findings] == ["deploy/production/app.yaml"]
    # an admin environment beside production still counts
    staged = evaluate(merged, _view(["deploy/production/app.yaml", "deploy/staging/app.yaml"]))
    assert staged.decision is Decision.PASS


def test_a_repository_rule_sees_its_own_environments() -> None:
    repo = SANDBOX + textwrap.dedent(
        """\
        rules:
          - id: sandbox-only
            kind: prod-only-change
            action: block
            options: {production: [sandbox]}
        """
    )
    merged = merge_policies(load_policy_text(ADMIN), repo)
    rule = merged.rule("sandbox-only")
    assert rule is not None and rule.from_repository
    admin_rule = merged.rule("prod-only")
    assert admin_rule is not None and not admin_rule.from_repository
    verdict = evaluate(merged, _view(["sandbox/x.txt"]))
    assert verdict.decision is Decision.FAIL
    assert [f.rule for f in verdict.findings] == ["sandbox-only"]


def test_a_repository_cannot_tighten_into_a_looser_rule_by_reusing_an_id() -> None:
    repo = "version: 1\nrules:\n  - {id: prod-only, kind: prod-only-change, action: warn}\n"
    merged = merge_policies(load_policy_text(ADMIN), repo)
    rule = merged.rule("prod-only")
    assert rule is not None and rule.action.value == "require-approval"


def test_a_repository_defining_the_break_glass_group_is_refused_whole() -> None:
    admin = ADMIN.replace("  emergency: {slack: [U0OPS]}\n", "")
    repo = SANDBOX + "groups:\n  emergency: {slack: [U0BOB]}\n"
    merged = merge_policies(load_policy_text(admin), repo)
    assert "emergency" not in merged.groups
    assert "sandbox" not in merged.environments
