"""Schema versions: Alembic owns the schema (`alembic/`, `changegate db upgrade`); opening
a database checks that it is current, and says what to do when it is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from bot.store.engine import make_engine, normalize_url


class DatabaseUnavailable(Exception):
    """The database is missing or unreachable: a configuration or environment problem the
    CLI reports in one line (exit 2), not a crash."""


def display_url(url: str) -> str:
    """The database URL as an operator may see it in an error: password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given, minus nothing
        return url


def unreachable(url: str, exc: BaseException) -> DatabaseUnavailable:
    """A one-line `DatabaseUnavailable` for a driver error met while connecting."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return DatabaseUnavailable(
        f"cannot reach the database at {display_url(url)} ({first}): start it, or point "
        "CHANGEGATE_DATABASE_URL at one that runs"
    )


def open_existing(url: str) -> Engine:
    """An engine on a database that exists, answers and is at the current schema.

    For commands that only read or repair rows (audit verify/export, inbox requeue, policy
    simulate): unlike `make_engine` plus `ensure_current`, it never creates a SQLite file
    or migrates one, so running such a command in the wrong directory leaves nothing behind.
    """
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise DatabaseUnavailable(
                f"{display_url(url)} is an in-memory database with nothing in it: point "
                "CHANGEGATE_DATABASE_URL at the server's database"
            )
        if not database.startswith("file:") and not Path(database).is_file():
            raise DatabaseUnavailable(
                f"no database at {Path(database).resolve()}: run this where the server runs, "
                "or point CHANGEGATE_DATABASE_URL at its database"
            )
        # Read-only first: the engine's connections switch a file to WAL, which writes.
        probe = sa.create_engine(
            "sqlite://",
            creator=lambda: (
                sqlite3.connect(
                    f"{Path(database).resolve().as_uri()}?mode=ro",
                    uri=True,
                    check_same_thread=False,
                )
                if not database.startswith("file:")
                else sqlite3.connect(database, uri=True)
            ),
        )
        try:
            _check_schema(url, probe)
        finally:
            probe.dispose()
        return make_engine(url)
    engine = make_engine(url)
    try:
        _check_schema(url, engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _check_schema(url: str, engine: Engine) -> None:
    try:
        current = current_revision(engine)
    except sa.exc.DatabaseError as exc:
        raise unreachable(url, exc) from None
    if current != head_revision():
        raise SchemaError(
            f"database at {display_url(url)} has schema {current or 'nothing (empty)'}, "
            f"this version needs {head_revision()}: run `changegate db upgrade`"
        )


# -- schema version --------------------------------------------------------------------


class SchemaError(Exception):
    """The database schema is not at the version this code needs."""


def alembic_dir() -> Path:
    """Where the migrations live: packaged inside `bot/`, or the repository's `alembic/`."""
    package = Path(__file__).resolve().parents[1]  # bot/
    for candidate in (package / "alembic", package.parent / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise SchemaError("alembic migrations not found next to the bot package")


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    cfg.attributes["database_url"] = normalize_url(database_url)
    return cfg


def upgrade(database_url: str) -> None:
    """Bring the database to the newest schema (`changegate db upgrade`)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in `alembic_version`, or None. Read directly: asking
    Alembic's MigrationContext logs its "Context impl" lines, which then appeared twice in
    the start-up log of a new database (once here, once for the upgrade)."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise SchemaError(f"alembic_version holds several heads: {', '.join(sorted(rows))}")
    return rows[0] if rows else None


def is_empty(engine: Engine) -> bool:
    """No tables at all: a database nobody has used yet."""
    return not sa.inspect(engine).get_table_names()


def ensure_current(engine: Engine, database_url: str, *, auto_upgrade_fresh_sqlite: bool) -> str:
    """Refuse a database that is behind; create the schema of a brand-new SQLite file.

    Why the exception: with no settings at all, `changegate serve` runs on an embedded
    SQLite file that it creates itself; asking a first-time user to run `db upgrade` first
    would be friction with no benefit. Only an *empty* SQLite database is upgraded
    automatically. A SQLite file that already holds data, and every PostgreSQL database
    (shared by many processes, migrated by an operator), must be upgraded explicitly.
    Returns what happened, for the start-up log.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return f"schema at {head}"
    if auto_upgrade_fresh_sqlite and engine.dialect.name == "sqlite" and is_empty(engine):
        upgrade(database_url)
        return f"new SQLite database created at schema {head}"
    raise SchemaError(
        f"database schema is at {current or 'nothing (empty database)'}, this version needs "
        f"{head}: run `changegate db upgrade` (with the same CHANGEGATE_DATABASE_URL)"
    )
