"""One case per row of the README's exit-code table, through the real command."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from bot import audit

from support import REPO_ROOT, WorkTreeRepo, run_cli

POLICY = """\
version: 1
rules:
  - {id: pinned, kind: unpinned-image, action: block}
"""

COMPOSE = "services:\n  web:\n    image: {image}\n"


def test_readme_table_has_exactly_these_codes() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert re.findall(r"^\| `(\d)` \|", readme, flags=re.MULTILINE) == ["0", "1", "2", "3"]


def _repo(git_repo: WorkTreeRepo, image: str) -> WorkTreeRepo:
    git_repo.commit(
        {".changegate.yml": POLICY, "compose.yaml": COMPOSE.format(image="nginx:1.25.3")}, "base"
    )
    git_repo.git("tag", "base")
    git_repo.commit({"compose.yaml": COMPOSE.format(image=image)}, "head")
    return git_repo


def test_0_pass(git_repo: WorkTreeRepo) -> None:
    repo = _repo(git_repo, "nginx:1.25.4")
    proc = run_cli("check", "--base", "base", "--head", "HEAD", cwd=repo.path)
    assert (proc.returncode, proc.stdout.strip()) == (0, "changegate: pass (no findings)")


def test_1_fail(git_repo: WorkTreeRepo) -> None:
    repo = _repo(git_repo, "nginx:latest")
    proc = run_cli("check", "--base", "base", "--head", "HEAD", cwd=repo.path)
    assert proc.returncode == 1, proc.stderr
    assert "changegate: fail (1 block" in proc.stdout


def _audit_row_then(tmp_path: Path, tampering: str) -> None:
    """A fresh database (`db upgrade`) holding one audit row, then `tampering` (SQL) on it."""
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'changegate.db'}")
    with Session(engine) as session:
        audit.append(
            session,
            audit.Entry(action="verdict", actor=("github", "bot"), subject="s", sha="a" * 40),
        )
        session.commit()
    with engine.begin() as conn:
        conn.execute(sa.text(tampering))
    engine.dispose()


def test_1_audit_row_edited(tmp_path: Path) -> None:
    _audit_row_then(tmp_path, "UPDATE audit_log SET subject = 'other'")
    proc = run_cli("audit", "verify", cwd=tmp_path)
    assert proc.returncode == 1
    assert "row 1: content does not match its hash" in proc.stderr


def test_2_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text("version: 1\nrules: [{id: x, kind: nope}]\n")
    proc = run_cli("policy", "validate", "policy.yml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("policy.yml:2:")


def test_2_environment_error(tmp_path: Path) -> None:
    proc = run_cli("audit", "verify", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("changegate: no database at ")


def test_3_unexpected_error_is_one_line_unless_debugging(tmp_path: Path) -> None:
    """A row no code expects (a timestamp that is not one) is a crash: one line, and the
    traceback only when asked for."""
    _audit_row_then(tmp_path, "UPDATE audit_log SET at = 'yesterday-ish'")
    proc = run_cli("audit", "export", "--since", "all", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("changegate: unexpected error: ")
    assert "CHANGEGATE_DEBUG=1" in lines[0]
    debug = run_cli(
        "audit", "export", "--since", "all", cwd=tmp_path, env={"CHANGEGATE_DEBUG": "1"}
    )
    assert debug.returncode == 3
    assert debug.stderr.startswith("Traceback (most recent call last):")
