"""The database: SQLModel tables, the engine factory, and schema version checks.

Alembic owns the schema (`alembic/`, `changegate db upgrade`); the models here are what the
migrations must match, and a test checks that they do. Times are naive UTC everywhere, so
SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Field, SQLModel

from bot.change import Change, Verdict

# -- tables -----------------------------------------------------------------------------


class DeliveryRecord(SQLModel, table=True):
    """One webhook delivery in the inbox; its id is `forge:delivery-id`."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_claim", "state", "available_at"),
        sa.Index("ix_deliveries_subject_state", "subject", "state"),
        # Covers SQLite's claim: the row holds the body, so reading `subject` or
        # `lease_until` from the row walks 25 KB of overflow pages per due delivery.
        sa.Index(
            "ix_deliveries_due",
            "state",
            "available_at",
            "received_at",
            "subject",
            "lease_until",
            "id",
        ),
    )

    id: str = Field(sa_column=sa.Column(sa.String(300), primary_key=True))
    forge: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    delivery_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    event: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    headers: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    subject: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    state: str = Field(default="queued", sa_column=sa.Column(sa.String(20), nullable=False))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    available_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    lease_until: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))
    leased_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    received_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    processed_at: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))


class EvaluationRecord(SQLModel, table=True):
    """A verdict as published; `token` makes the details page URL unguessable."""

    __tablename__ = "evaluations"

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    token: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    forge: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False, index=True))
    repo: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    number: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    base_sha: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    head_sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    decision: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    verdict: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    delivery_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(300)))
    created_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class SubjectHead(SQLModel, table=True):
    """The newest head commit seen per subject, so a stale delivery never overwrites it."""

    __tablename__ = "subject_heads"

    subject: str = Field(sa_column=sa.Column(sa.String(500), primary_key=True))
    head_sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    received_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    updated_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class BaseChange(SQLModel, table=True):
    """Each time a head was shown against another base (`<base ref>@<merge base>`): an
    approval binds to the head and the base it was shown against."""

    __tablename__ = "base_changes"
    __table_args__ = (sa.Index("ix_base_changes_subject_head", "subject", "head_sha", "id"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    head_sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    basis: str = Field(sa_column=sa.Column(sa.String(400), nullable=False))
    seen_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


metadata = SQLModel.metadata

#: Modules that define more tables on the same metadata; alembic and the schema checks
#: import them so that `metadata` is the whole schema.
MODEL_MODULES = ("bot.approvals.models",)


def load_models() -> sa.MetaData:
    """Import every module that defines tables, and return the complete metadata."""
    import importlib

    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return metadata


deliveries = cast(sa.Table, DeliveryRecord.__table__)  # type: ignore[attr-defined]
evaluations = cast(sa.Table, EvaluationRecord.__table__)  # type: ignore[attr-defined]
subject_heads = cast(sa.Table, SubjectHead.__table__)  # type: ignore[attr-defined]
base_changes = cast(sa.Table, BaseChange.__table__)  # type: ignore[attr-defined]


def utcnow() -> dt.datetime:
    """Naive UTC: what every timestamp column holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# -- engine ----------------------------------------------------------------------------


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
    here = Path(__file__).resolve().parent
    for candidate in (here / "alembic", here.parent / "alembic"):
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


# -- evaluations and subject heads -----------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(24)


def claim_head(engine: Engine, subject: str, head_sha: str, received_at: dt.datetime) -> bool:
    """Record `head_sha` as the subject's newest head unless a later delivery saw another.

    Returns False when the delivery is stale: a delivery received after this one already
    recorded a different head. Deliveries of one subject are never processed at the same
    time (the inbox sees to it), so read-then-write here needs no further locking.
    """
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(subject_heads.c.head_sha, subject_heads.c.received_at).where(
                subject_heads.c.subject == subject
            )
        ).first()
        if row is None:
            conn.execute(
                sa.insert(subject_heads).values(
                    subject=subject, head_sha=head_sha, received_at=received_at, updated_at=now
                )
            )
            return True
        if row.head_sha != head_sha and row.received_at > received_at:
            return False
        conn.execute(
            sa.update(subject_heads)
            .where(subject_heads.c.subject == subject)
            .values(
                head_sha=head_sha, received_at=max(received_at, row.received_at), updated_at=now
            )
        )
        return True


def record_basis(engine: Engine, subject: str, head_sha: str, basis: str) -> dt.datetime | None:
    """Record that `head_sha` is shown against `basis` now. Returns when it started to be,
    if the head was shown against another basis before (approvals given earlier were given
    on another diff), else None. Deliveries of one subject never run at the same time."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(base_changes.c.basis, base_changes.c.seen_at)
            .where(base_changes.c.subject == subject, base_changes.c.head_sha == head_sha)
            .order_by(base_changes.c.id.desc())
            .limit(2)
        ).all()
        if rows and rows[0].basis == basis:
            return rows[0].seen_at if len(rows) > 1 else None
        now = utcnow()
        conn.execute(
            sa.insert(base_changes).values(
                subject=subject, head_sha=head_sha, basis=basis, seen_at=now
            )
        )
        return now if rows else None


def save_evaluation(
    engine: Engine,
    *,
    token: str,
    forge: str,
    subject: str,
    repo: str,
    number: int | None,
    verdict: Verdict,
    delivery_id: str | None,
    change: Change | None = None,
    note: str | None = None,
) -> None:
    """Store a published verdict with what the details page explains: who counted toward
    each approval, which approvals did not count and why, the change's title and author,
    and the note of an override (a Slack rejection or a break-glass)."""
    data = json.loads(json.dumps(verdict.as_dict()))
    for entry, status in zip(data["approvals"], verdict.approvals, strict=True):
        entry["approvers"] = list(status.approvers)
        entry["ignored"] = [{"who": who, "why": why} for who, why in status.ignored]
    if change is not None:
        data["change"] = {"title": change.title, "author": change.author, "url": change.url}
        if change.basis is not None:  # the base the verdict judged: approvals bind to it
            data["change"]["basis"] = change.basis
    if note:
        data["note"] = note
    with engine.begin() as conn:
        conn.execute(
            sa.insert(evaluations).values(
                token=token,
                forge=forge,
                subject=subject,
                repo=repo,
                number=number,
                base_sha=verdict.base,
                head_sha=verdict.head or "",
                decision=str(verdict.decision),
                verdict=data,
                delivery_id=delivery_id,
                created_at=utcnow(),
            )
        )


def evaluation_by_token(engine: Engine, token: str) -> dict[str, Any] | None:
    """The evaluation behind a details page URL, or None."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        row = conn.execute(sa.select(evaluations).where(evaluations.c.token == token)).first()
    return dict(row._mapping) if row is not None else None
