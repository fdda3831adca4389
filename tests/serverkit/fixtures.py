"""Fixtures of the server-side tests (web, inbox, store, worker, redelivery, ...; each
folder's conftest imports them): a fresh database on SQLite and on PostgreSQL, settings,
a policy file, the in-memory forge, and a real uvicorn server on a free local port.

PostgreSQL runs when CHANGEGATE_TEST_POSTGRES_URL is set (and then must be reachable);
each test gets a schema of its own, dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from live import free_port
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bot import store
from bot.settings import Settings
from serverkit.testforge import SECRET, MemoryForge

from support import postgres_schema

POLICY = """\
version: 1
environments:
  production:
    paths: ["deploy/production/**"]
  staging:
    paths: ["deploy/staging/**"]
groups:
  senior:
    github: ["alice"]
rules:
  - id: pinned-images
    kind: unpinned-image
    action: block
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
"""


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema of this test's own."""
    with postgres_schema("cg_test") as url:  # skips, saying why, without PostgreSQL
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'changegate.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A database with the current schema. Built from the models, which is faster than
    running the migrations for every test; test_store checks that the two agree."""
    eng = store.make_engine(db_url)
    store.load_models().create_all(eng)
    with eng.begin() as conn:  # what `alembic stamp head` records
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute(
            sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": store.head_revision()}
        )
    yield eng
    eng.dispose()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def make_settings(tmp_path: Path, policy_file: Path):  # type: ignore[no-untyped-def]
    def make(database_url: str | None = None, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url or f"sqlite:///{tmp_path / 'web.db'}",
            "policy": policy_file,
            "public_url": "https://changegate.example.com",
            "github_webhook_secret": SecretStr(SECRET),
            "worker_count": 0,
            "poll_interval_seconds": 0.05,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.05,
            "policy_reload_seconds": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]

    return make


@pytest.fixture
def forge() -> MemoryForge:
    return MemoryForge()


class TcpProxy:
    """A TCP relay to a database that a test can cut and restore (a database restart)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked in its thread
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
