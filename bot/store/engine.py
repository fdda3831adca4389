"""The engine factory: what each backend needs for a concurrent inbox."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine with the settings each backend needs for a concurrent inbox.

    SQLite: WAL (readers never block the writer), a busy timeout instead of instant
    "database is locked", foreign keys on, and transactions that begin IMMEDIATE so a
    read-then-write transaction (a claim) takes the write lock up front and cannot deadlock
    with another. Read-only work can pass `execution_options(sqlite_deferred=True)`.

    Commits are fsynced (`synchronous=FULL`) unless the connection says
    `execution_options(sqlite_relaxed=True)`: the workers' bookkeeping (claims, leases,
    completions) uses that, since losing its last commits to a power cut only means
    redoing some work, while a stored delivery must survive one.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_SECONDS,
                "factory": _sqlite_connection_class(),
            },
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=30,
        )
        _sqlite_tuning(engine)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


#: How long a SQLite writer waits for the write lock before "database is locked".
SQLITE_BUSY_SECONDS = 30.0


def _sqlite_connection_class() -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose write transactions queue on one lock per engine.

    SQLite has one writer at a time. Threads that wait for it inside SQLite's busy handler
    sleep in steps of up to 100 ms and are not woken when the lock frees, which is where
    the ack path's p99 went when a worker was writing. Threads of one process queue here
    instead and start the moment the previous writer commits; other processes (a CLI, a
    second server) still meet the busy handler. A plain lock, not a reentrant one: a
    connection may be given back (and its transaction rolled back) by another thread.
    """
    writer = threading.Lock()

    class WriterQueuedConnection(sqlite3.Connection):
        holds_writer = False
        synchronous = ""

        def begin(self, *, write: bool, synchronous: str) -> None:
            if self.synchronous != synchronous:
                self.execute(f"PRAGMA synchronous={synchronous}")
                self.synchronous = synchronous
            if not write:
                self.execute("BEGIN")
                return
            if not writer.acquire(timeout=SQLITE_BUSY_SECONDS):
                raise sqlite3.OperationalError("database is locked (waited for this process)")
            try:
                self.execute("BEGIN IMMEDIATE")
            except BaseException:
                writer.release()
                raise
            self.holds_writer = True

        def _ending(self, end: Callable[[], None]) -> None:
            """End the transaction (or the connection), then let the next writer in."""
            try:
                end()
            finally:
                if self.holds_writer:
                    self.holds_writer = False
                    writer.release()

        def commit(self) -> None:
            self._ending(super().commit)

        def rollback(self) -> None:
            self._ending(super().rollback)

        def close(self) -> None:
            self._ending(super().close)

    return WriterQueuedConnection


def _sqlite_tuning(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        conn.connection.dbapi_connection.begin(  # type: ignore[union-attr]
            write=not options.get("sqlite_deferred", False),
            synchronous="NORMAL" if options.get("sqlite_relaxed", False) else "FULL",
        )


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def advisory_key(name: str) -> Any:
    """A PostgreSQL advisory-lock key for `name`, scoped to the current schema. Advisory
    locks are database-wide: two installations (or test runs) in separate schemas of one
    database must not take each other's claim, audit or job locks."""
    return sa.func.hashtext(sa.func.concat(sa.func.current_schema(), f":changegate:{name}"))


def ping(engine: Engine) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
