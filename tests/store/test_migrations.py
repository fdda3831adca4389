"""Alembic owns the schema: migrations build it on both backends and match the models."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot import store


def test_upgrade_empty_database_to_head_matches_models(db_url: str) -> None:
    store.upgrade(db_url)
    engine = store.make_engine(db_url)
    try:
        assert store.current_revision(engine) == store.head_revision()
        assert {"deliveries", "evaluations", "subject_heads", "approval_requests"} <= set(
            __import__("sqlalchemy").inspect(engine).get_table_names()
        )
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, store.load_models())
        assert diff == []
        store.upgrade(db_url)  # idempotent
        assert store.current_revision(engine) == store.head_revision()
    finally:
        engine.dispose()


def test_database_behind_is_refused_with_the_upgrade_command(db_url: str) -> None:
    engine = store.make_engine(db_url)
    try:
        with engine.begin() as conn:  # a database someone used without migrations
            conn.exec_driver_sql("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")
        with pytest.raises(store.SchemaError, match="changegate db upgrade"):
            store.ensure_current(engine, db_url, auto_upgrade_fresh_sqlite=True)
    finally:
        engine.dispose()


def test_empty_postgres_is_not_upgraded_behind_the_operators_back(pg_schema_url: str) -> None:
    engine = store.make_engine(pg_schema_url)
    try:
        with pytest.raises(store.SchemaError, match="empty database"):
            store.ensure_current(engine, pg_schema_url, auto_upgrade_fresh_sqlite=True)
    finally:
        engine.dispose()


def test_fresh_sqlite_file_is_created_at_head(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'sub' / 'new.db'}"
    engine = store.make_engine(url)
    try:
        note = store.ensure_current(engine, url, auto_upgrade_fresh_sqlite=True)
        assert "created" in note
        assert store.current_revision(engine) == store.head_revision()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_stale_head_never_overwrites_a_newer_one(engine) -> None:  # type: ignore[no-untyped-def]
    t0 = dt.datetime(2024, 5, 1, 12, 0, 0)
    later = t0 + dt.timedelta(seconds=5)
    subject = "github:acme/app#7"
    assert store.claim_head(engine, subject, "bbb", later)  # newer delivery processed first
    assert not store.claim_head(engine, subject, "aaa", t0)  # older delivery, older head: stale
    assert store.claim_head(engine, subject, "bbb", t0)  # older delivery, same head: fine
    assert store.claim_head(engine, subject, "ccc", later + dt.timedelta(seconds=1))
    assert not store.claim_head(engine, subject, "bbb", later)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        ),
        ("postgres://u:p@db/cg", "postgresql+psycopg://u:p@db/cg"),
        ("postgresql+psycopg://u@db/cg", "postgresql+psycopg://u@db/cg"),
        ("sqlite:///changegate.db", "sqlite:///changegate.db"),
    ],
)
def test_database_urls_use_psycopg3(given: str, expected: str) -> None:
    assert store.normalize_url(given) == expected


# -- SQLite: the writers of one process queue on one lock --------------------------------


def _sqlite_engine(tmp_path: Path) -> sa.Engine:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
    return engine


def test_sqlite_writer_waits_for_the_one_before_it_and_readers_do_not(tmp_path: Path) -> None:
    engine = _sqlite_engine(tmp_path)
    second_done = threading.Event()

    def second_writer() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        second_done.set()

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        thread = threading.Thread(target=second_writer)
        thread.start()
        # a reader is not queued behind the writer (WAL: it sees the last commit)
        with engine.connect().execution_options(sqlite_deferred=True) as reader:
            assert reader.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
        assert not second_done.wait(0.3), "a second writer ran inside the first's transaction"
    thread.join(30)
    assert second_done.is_set()
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT n FROM t")).scalars()) == [1, 2]
    engine.dispose()


def test_sqlite_writer_lock_is_released_however_the_transaction_ends(tmp_path: Path) -> None:
    engine = _sqlite_engine(tmp_path)
    # rolled back by an error
    with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO no_such_table VALUES (1)"))
    # a connection closed with its transaction open (rolled back when it goes back to the pool)
    conn = engine.connect()
    conn.begin()
    conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    conn.close()
    # a transaction begun in one thread and ended in another
    holder: list[sa.Connection] = []

    def open_elsewhere() -> None:
        holder.append(engine.connect())
        holder[0].begin()

    opened = threading.Thread(target=open_elsewhere)
    opened.start()
    opened.join(30)
    holder[0].execute(sa.text("INSERT INTO t VALUES (2)"))
    holder[0].commit()
    holder[0].close()
    # each of those gave the lock back: this write does not wait out the busy timeout
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (3)"))
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT n FROM t")).scalars()) == [2, 3]
    engine.dispose()
