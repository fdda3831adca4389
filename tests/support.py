"""Helpers shared by test modules (import as `from support import ...`).

Kept out of conftest.py: several directories have a conftest, and `from conftest import`
would pick whichever was imported first."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PG_ENV = "CHANGEGATE_TEST_POSTGRES_URL"
#: the database backends a test runs on; the PostgreSQL variant skips, saying why, unless
#: PG_ENV names a server (`.ci/run` sets it: there it runs, and fails if unreachable)
BACKENDS = ["sqlite", "postgres"]


def postgres_url() -> str:
    """The server PG_ENV names, or a visible skip of the calling test."""
    import pytest

    from bot import store

    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return store.normalize_url(url)


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A new schema `<prefix>_<random>` on the PostgreSQL server PG_ENV names, dropped with
    all in it afterwards: yields a database URL whose connections work in that schema."""
    import sqlalchemy as sa  # here, not above: most tests that import support need no database

    base = postgres_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, connect_args={"connect_timeout": 5})
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={urllib.parse.quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class WorkTreeRepo:
    """A git repository with a work tree in a temporary directory, for CLI and view tests
    (the stand-ins use bare repositories: tests/standins/gitrepo.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        return subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()

    def write(self, files: dict[str, str | bytes | None]) -> None:
        """Write (or, with None, delete) files in the work tree."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


def run_cli(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`changegate …` as a user runs it: a new process of this checkout's `bot`, in `cwd`,
    with no CHANGEGATE_* setting but those in `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    base["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
