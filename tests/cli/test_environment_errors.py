"""Issue 15.1: a missing or unreachable database is one line with the remedy and exit 2,
never a traceback, and never a side effect such as an empty `changegate.db`."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import closed_port, run_cli

POLICY = "version: 1\nrules: []\n"

READ_ONLY = [
    ["audit", "verify"],
    ["audit", "export"],
    ["inbox", "requeue"],
    ["policy", "simulate", "candidate.yml"],
]


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("argv", READ_ONLY, ids=" ".join)
def test_read_only_commands_in_a_directory_without_database(
    tmp_path: Path, argv: list[str]
) -> None:
    (tmp_path / "candidate.yml").write_text(POLICY)
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert line.startswith("changegate: no database at ")
    assert "CHANGEGATE_DATABASE_URL" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate.yml"]


@pytest.mark.parametrize("argv", READ_ONLY, ids=" ".join)
def test_read_only_commands_refuse_a_database_without_schema(
    tmp_path: Path, argv: list[str]
) -> None:
    """An existing but empty SQLite file (made by an older changegate) is not migrated."""
    (tmp_path / "candidate.yml").write_text(POLICY)
    (tmp_path / "changegate.db").write_bytes(b"")
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert "schema nothing (empty)" in line and "changegate db upgrade" in line
    assert (tmp_path / "changegate.db").read_bytes() == b""


@pytest.mark.parametrize(
    "argv",
    [["serve", "--port", "0"], ["worker"], ["db", "upgrade"], *READ_ONLY],
    ids=" ".join,
)
def test_unreachable_postgres_is_one_line_and_exit_2(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "candidate.yml").write_text(POLICY)
    url = f"postgresql://changegate:s3cret@127.0.0.1:{closed_port()}/changegate"
    proc = run_cli(*argv, cwd=tmp_path, env={"CHANGEGATE_DATABASE_URL": url})
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert line.startswith("changegate: cannot reach the database at postgresql://changegate:")
    assert "s3cret" not in line  # the password is never printed
    assert "CHANGEGATE_DATABASE_URL" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate.yml"]


def test_db_upgrade_then_read_only_commands_work(tmp_path: Path) -> None:
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    proc = run_cli("audit", "verify", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "audit log intact: 0 rows" in proc.stdout
    proc = run_cli("inbox", "requeue", cwd=tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, "re-queued 0 dead deliveries")
