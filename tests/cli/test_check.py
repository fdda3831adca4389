"""`changegate check` over real git repositories: JSON shape, exit codes, policy source."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.cli import main

from support import WorkTreeRepo as GitRepo

POLICY = """\
version: 1
environments:
  production: {paths: ["deploy/production/**"]}
  staging: {paths: ["deploy/staging/**"]}
groups:
  senior: {github: [alice]}
rules:
  - {id: prod-only, kind: prod-only-change, action: require-approval, approvers: senior}
  - {id: playbook, kind: migration-playbook, action: block, paths: ["db/migrate/**"]}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.commit(
        {
            ".changegate.yml": POLICY,
            "deploy/production/app.yaml": "replicas: 2\n",
            "deploy/staging/app.yaml": "replicas: 2\n",
        },
        "initial",
    )
    git_repo.git("tag", "base")
    return git_repo


def test_json_output_has_exactly_the_spec_shape(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    head = repo.commit({"db/migrate/001.sql": "drop table flags;"})
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "base",
        "--head",
        "HEAD",
        "--format",
        "json",
    )
    assert code == 1
    data = json.loads(out)
    assert list(data) == ["decision", "base", "head", "findings", "approvals"]
    assert data["decision"] == "fail"
    assert data["head"] == head and len(data["base"]) == 40
    assert data["findings"] == [
        {
            "rule": "playbook",
            "kind": "migration-playbook",
            "action": "block",
            "path": "db/migrate/001.sql",
            "line": 1,
            "subject": "db/migrate/001.sql",
            "message": data["findings"][0]["message"],
            "preexisting": False,
        }
    ]
    assert data["approvals"] == []


def test_description_with_playbook_passes(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    repo.commit({"db/migrate/001.sql": "drop table flags;", "docs/playbooks/flags.md": "# run"})
    desc = tmp_path / "body.md"
    desc.write_text("Playbook: docs/playbooks/flags.md")
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "base",
        "--head",
        "HEAD",
        "--description-file",
        str(desc),
        "--format",
        "json",
    )
    assert (code, json.loads(out)["decision"]) == (0, "pass")


def test_approval_required_exits_1_and_lists_the_approval(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit({"deploy/production/app.yaml": "replicas: 3\n"})
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "base",
        "--head",
        "HEAD",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert code == 1 and data["decision"] == "approval_required"
    assert data["approvals"] == [
        {"rule": "prod-only", "group": "senior", "required": 1, "granted": 0}
    ]


def test_a_change_never_governs_itself(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    # The PR turns the prod-only rule into a warning and edits production: the base copy rules.
    loosened = POLICY.replace("action: require-approval, approvers: senior", "action: warn")
    repo.commit({".changegate.yml": loosened, "deploy/production/app.yaml": "replicas: 9\n"})
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "base",
        "--head",
        "HEAD",
        "--format",
        "json",
    )
    assert (code, json.loads(out)["decision"]) == (1, "approval_required")


def test_base_that_is_not_an_ancestor_uses_the_merge_base(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"deploy/staging/app.yaml": "replicas: 5\n"})
    repo.git("checkout", "-q", "main")
    repo.commit({"db/migrate/999.sql": "on main only"})  # main moved on after the branch
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "main",
        "--head",
        "feature",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert code == 0, data  # main's migration is not part of the feature's change
    assert data["findings"] == []


def test_shallow_clone_with_the_base_present(
    repo: GitRepo,
    tmp_path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    for i in range(3):
        repo.commit({f"notes/{i}.txt": "x"})
    repo.git("tag", "base2")
    repo.commit({"db/migrate/002.sql": "x"})
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{repo.path}", str(clone)], check=True
    )
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(clone),
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        "--format",
        "json",
    )
    assert code == 1
    assert [f["path"] for f in json.loads(out)["findings"]] == ["db/migrate/002.sql"]


def test_renamed_and_deleted_files(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.git("mv", "deploy/staging/app.yaml", "deploy/staging/web.yaml")
    repo.commit({"deploy/production/app.yaml": None})
    code, out, _ = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "base",
        "--head",
        "HEAD",
        "--format",
        "json",
    )
    assert (code, json.loads(out)["decision"]) == (0, "pass")  # prod and staging both changed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base", "nope", "--head", "HEAD"], "unknown revision 'nope'"),
        (["--base", "base", "--head", "HEAD", "--policy", "/nonexistent.yml"], "no such file"),
    ],
)
def test_usage_errors_exit_2(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "check", "--repo", str(repo.path), *argv)
    assert code == 2 and message in err


def test_broken_policy_exits_2_with_file_line_col(
    repo: GitRepo,
    tmp_path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nrules:\n  - {id: a, kind: nope, action: block}\n")
    code, _, err = run(
        capsys,
        "check",
        "--repo",
        str(repo.path),
        "--base",
        "base",
        "--head",
        "HEAD",
        "--policy",
        str(bad),
    )
    assert code == 2
    assert err.startswith(f"{bad}:3:")


def test_policy_validate_and_schema_commands(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.yml"
    good.write_text(POLICY)
    assert run(capsys, "policy", "validate", str(good))[0] == 0
    good.write_text(POLICY + "unknown: 1\n")
    code, _, err = run(capsys, "policy", "validate", str(good))
    assert code == 2 and f"{good}:10:1: unknown key 'unknown'" in err
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0 and json.loads(out)["title"].startswith("changegate policy")


def test_console_script_runs(repo: GitRepo) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "check",
            "--repo",
            str(repo.path),
            "--base",
            "base",
            "--head",
            "HEAD",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "changegate: pass" in proc.stdout


def test_reversed_range_is_an_error_not_a_pass(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15.2: `--base HEAD --head HEAD~1` used to say `pass (no findings)`."""
    repo.commit({"db/migrate/001.sql": "drop table flags;"})
    code, out, err = run(
        capsys, "check", "--repo", str(repo.path), "--base", "HEAD", "--head", "HEAD~1"
    )
    assert (code, out) == (2, "")
    assert "--base HEAD is a descendant of --head HEAD~1" in err
    assert "swap --base and --head" in err


def test_base_equal_to_head_has_nothing_to_check(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "check", "--repo", str(repo.path), "--base", "base", "--head", "HEAD"
    )
    assert code == 0
    assert out.strip() == "changegate: pass: nothing to check (base and HEAD are one commit)"
