"""`changegate policy test FILE`: a policy's cases run like code tests, as a user runs them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from support import REPO_ROOT, run_cli

POLICY = """\
version: 1
groups:
  sre: {github: [alice]}
rules:
  - id: deploy-owners
    kind: paths
    action: require-approval
    approvers: sre
    paths: ["deploy/**"]
    if: {target_branch: [main]}
    unless: {labels_any: [no-review]}
"""


def test_the_bundled_policy_passes_its_tests() -> None:
    proc = run_cli("policy", "test", "policies/default.tests.yml", cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout


def _write(tmp_path: Path, cases: str) -> Path:
    (tmp_path / "policy.yml").write_text(POLICY)
    tests = tmp_path / "policy.tests.yml"
    tests.write_text("policy: policy.yml\ncases:\n" + textwrap.indent(textwrap.dedent(cases), "  "))
    return tests


def test_cases_with_labels_branches_and_approvals(tmp_path: Path) -> None:
    tests = _write(
        tmp_path,
        """\
        - name: a deploy change to main needs sre
          after: {"deploy/app.yaml": "a: 1\\n"}
          target_branch: main
          labels: [infra]
          expect:
            decision: approval_required
            findings: [{rule: deploy-owners, path: deploy/app.yaml, line: 1}]
        - name: approved by alice it passes
          after: {"deploy/app.yaml": "a: 1\\n"}
          target_branch: main
          approvals: ["github:alice"]
          expect: {decision: pass}
        - name: the no-review label switches the rule off
          after: {"deploy/app.yaml": "a: 1\\n"}
          target_branch: main
          labels: [no-review]
          expect: {decision: pass, findings: []}
        """,
    )
    proc = run_cli("policy", "test", str(tests), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed, 0 failed" in proc.stdout


def test_a_mismatch_exits_1_with_a_diff(tmp_path: Path) -> None:
    tests = _write(
        tmp_path,
        """\
        - name: wrongly expected to pass
          before: {"deploy/app.yaml": "a: 1\\n"}
          after: {"deploy/app.yaml": null}
          target_branch: main
          expect: {decision: pass, findings: []}
        """,
    )
    proc = run_cli("policy", "test", str(tests), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL wrongly expected to pass" in proc.stdout
    assert "-decision: pass" in proc.stdout
    assert "+decision: approval_required" in proc.stdout
    assert "+finding: deploy-owners deploy/app.yaml require-approval" in proc.stdout
    assert "0 passed, 1 failed" in proc.stdout


def test_a_broken_test_file_or_policy_exits_2(tmp_path: Path) -> None:
    tests = _write(tmp_path, "- {name: x, expect: {decision: maybe}}\n")
    proc = run_cli("policy", "test", str(tests), cwd=tmp_path)
    assert proc.returncode == 2 and "cases.0.expect.decision" in proc.stderr
    (tmp_path / "policy.yml").write_text("version: 1\nrules: [{id: x, kind: nope}]\n")
    tests.write_text("policy: policy.yml\ncases: [{name: x, expect: {decision: pass}}]\n")
    proc = run_cli("policy", "test", str(tests), cwd=tmp_path)
    assert proc.returncode == 2 and "policy.yml:2:" in proc.stderr
