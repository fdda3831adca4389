"""Issue 15.3: judge what the change did. A finding on a line the change did not touch is
reported as already present before this change, at `warn`; `scope: file` judges the file."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.views.lines import touched_lines

from support import WorkTreeRepo, run_cli

POLICY = """\
version: 1
environments:
  production: {paths: ["deploy/production/**"]}
  staging: {paths: ["deploy/staging/**"]}
groups:
  senior: {github: [alice]}
rules:
  - {id: pinned, kind: unpinned-image, action: block, paths: ["/compose.yaml"]}
  - {id: pinned-strict, kind: unpinned-image, action: block, scope: file, paths: ["strict/**"]}
  - {id: shared, kind: shared-resource, action: block}
  - {id: prod-only, kind: prod-only-change, action: require-approval, approvers: senior}
"""

COMPOSE = """\
services:
  db:
    image: postgres:latest
    environment:
      POSTGRES_PASSWORD: {password}
"""


def values(redis: str) -> str:
    return f"externalRedis:\n  host: {redis}\n  port: 6379\nreplicas: 2\n"


@pytest.fixture
def repo(git_repo: WorkTreeRepo) -> WorkTreeRepo:
    git_repo.commit(
        {
            ".changegate.yml": POLICY,
            "compose.yaml": COMPOSE.format(password="old"),
            "strict/compose.yaml": COMPOSE.format(password="old"),
            "deploy/production/values.yaml": values("redis.prod.internal"),
            "deploy/staging/values.yaml": values("redis.prod.internal"),
        },
        "base",
    )
    git_repo.git("tag", "base")
    return git_repo


def check_json(repo: WorkTreeRepo, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(
        ["check", "--repo", str(repo.path), "--base", "base", "--head", "HEAD", "--format", "json"]
    )
    return code, json.loads(capsys.readouterr().out)


def test_a_password_change_is_not_blocked_for_the_latest_on_line_3(repo: WorkTreeRepo) -> None:
    repo.commit({"compose.yaml": COMPOSE.format(password="new")})
    text = run_cli("check", "--base", "base", "--head", "HEAD", cwd=repo.path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "Already present before this change (warn, not judged):" in text.stdout
    assert "postgres:latest" in text.stdout
    assert text.stdout.strip().splitlines()[-1] == "changegate: pass (1 already present)"
    data = json.loads(
        run_cli(
            "check", "--base", "base", "--head", "HEAD", "--format", "json", cwd=repo.path
        ).stdout
    )
    [finding] = data["findings"]
    assert (finding["rule"], finding["line"], finding["action"], finding["preexisting"]) == (
        "pinned",
        3,
        "warn",
        True,
    )
    sarif = json.loads(
        run_cli(
            "check", "--base", "base", "--head", "HEAD", "--format", "sarif", cwd=repo.path
        ).stdout
    )
    [result] = sarif["runs"][0]["results"]
    assert result["baselineState"] == "unchanged"


def test_a_touched_line_is_judged_at_the_rules_action(
    repo: WorkTreeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit(
        {"compose.yaml": COMPOSE.format(password="old") + "  cache:\n    image: redis:latest\n"}
    )
    code, data = check_json(repo, capsys)
    assert code == 1
    got = [(f["line"], f["action"], f["preexisting"]) for f in data["findings"]]
    assert got == [(3, "warn", True), (7, "block", False)]
    main(
        ["check", "--repo", str(repo.path), "--base", "base", "--head", "HEAD", "--format", "sarif"]
    )
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert [r["baselineState"] for r in results] == ["unchanged", "new"]


def test_scope_file_judges_the_whole_file(
    repo: WorkTreeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit({"strict/compose.yaml": COMPOSE.format(password="new")})
    code, data = check_json(repo, capsys)
    assert code == 1
    [finding] = data["findings"]
    assert (finding["rule"], finding["action"], finding["preexisting"]) == (
        "pinned-strict",
        "block",
        False,
    )


def test_whole_change_rules_are_unaffected(
    repo: WorkTreeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """prod-only judges the change: an untouched-line argument never softens it."""
    repo.commit({"deploy/production/values.yaml": values("redis.prod.internal") + "extra: 1\n"})
    code, data = check_json(repo, capsys)
    assert code == 1 and data["decision"] == "approval_required"
    prod = [f for f in data["findings"] if f["rule"] == "prod-only"]
    assert prod and all(f["action"] == "require-approval" and not f["preexisting"] for f in prod)
    # the shared Redis was there before, and the change touched none of its references
    shared = [f for f in data["findings"] if f["rule"] == "shared"]
    assert shared and all(f["action"] == "warn" and f["preexisting"] for f in shared)


def test_a_new_reference_makes_the_shared_resource_new(
    repo: WorkTreeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit(
        {
            "deploy/production/values.yaml": values("redis.prod2.internal"),
            "deploy/staging/values.yaml": values("redis.prod2.internal"),
        }
    )
    code, data = check_json(repo, capsys)
    shared = [f for f in data["findings"] if f["rule"] == "shared"]
    assert shared and all(f["action"] == "block" and not f["preexisting"] for f in shared)
    assert code == 1


def test_scan_has_no_before() -> None:
    assert touched_lines(None, "a\nb\n") == frozenset({1, 2})


def test_line_diff_matches_repeated_lines_around_one_edit() -> None:
    old = "".join(f"  - port: {i % 3}\n    restart: always\n" for i in range(40))
    lines = old.splitlines(keepends=True)
    lines[41] = "    restart: never\n"
    assert touched_lines(old, "".join(lines)) == frozenset({42})
    assert touched_lines(old, "x: 1\n" + old) == frozenset({1})
    assert touched_lines(old, old) == frozenset()


def test_a_repository_may_ask_for_whole_files_never_unask() -> None:
    from bot.policy.merge import merge_policies
    from bot.policy.schema import load_policy_text

    def policy(scope: str) -> str:
        return f"version: 1\nrules:\n  - {{id: pinned, kind: unpinned-image, action: block, scope: {scope}}}\n"

    admin_change = load_policy_text(policy("change"), "admin.yml")
    admin_file = load_policy_text(policy("file"), "admin.yml")
    assert merge_policies(admin_change, policy("file")).rules[0].scope == "file"
    assert merge_policies(admin_file, policy("change")).rules[0].scope == "file"
