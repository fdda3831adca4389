"""The workers' side: claim due deliveries (a lease, one per subject), renew the leases,
and record how each ended."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.forges import Delivery
from bot.inbox.states import DEAD, DONE, IGNORED, PROCESSING, QUEUED, Backoff, Claimed
from bot.store import advisory_key, is_postgres, utcnow
from bot.store import deliveries as T


@contextlib.contextmanager
def _worker_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction for worker bookkeeping, committed without waiting for the disk (SQLite
    `synchronous=NORMAL`, PostgreSQL `synchronous_commit=off`): a power cut can only undo
    its last claims or completions, which means redoing some work. Storing a delivery
    always waits for the disk: that is the promise behind the 202."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_relaxed=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn


def _claim_statements() -> dict[str, Any]:
    """The claim's statements, built once: a worker claims many times a second, and
    building SQL constructs costs more Python time than the database needs to run them."""
    now = sa.bindparam("now", type_=sa.DateTime)
    lim = sa.bindparam("lim", type_=sa.Integer)
    other = T.alias("busy")
    busy = sa.select(other.c.id).where(
        other.c.subject == T.c.subject,
        other.c.state == PROCESSING,
        other.c.lease_until > now,
    )
    due = sa.or_(
        sa.and_(T.c.state == QUEUED, T.c.available_at <= now),
        sa.and_(T.c.state == PROCESSING, T.c.lease_until <= now),
    )
    candidates = (
        sa.select(T.c.id, T.c.subject)
        .where(due, sa.or_(T.c.subject == "", ~busy.exists()))
        .order_by(T.c.available_at, T.c.received_at)
        .limit(lim)
    )
    bury, lease = _bury_and_lease(now)
    due_columns = (T.c.id, T.c.subject, T.c.available_at, T.c.received_at)
    return {
        "busy_sqlite": sa.select(T.c.subject).where(
            T.c.state == PROCESSING, T.c.lease_until > now, T.c.subject != ""
        ),
        "queued_sqlite": sa.select(*due_columns)
        .where(T.c.state == QUEUED, T.c.available_at <= now)
        .order_by(T.c.available_at, T.c.received_at)
        .limit(lim)
        .offset(sa.bindparam("offset", type_=sa.Integer)),
        "expired_sqlite": sa.select(*due_columns).where(
            T.c.state == PROCESSING, T.c.lease_until <= now
        ),
        "lock": sa.select(sa.func.pg_advisory_xact_lock(advisory_key("claim"))),
        "bury": bury,
        "candidates_pg": candidates.with_for_update(skip_locked=True, of=T),
        "lease": lease,
    }


def _bury_and_lease(now: Any) -> tuple[Any, Any]:
    """The claim's writes: expired leases on their last attempt go dead; the chosen
    deliveries are leased."""
    bury = (
        sa.update(T)
        .where(
            T.c.state == PROCESSING,
            T.c.lease_until <= now,
            T.c.attempts >= sa.bindparam("max_attempts"),
        )
        .values(
            state=DEAD,
            lease_until=None,
            processed_at=now,
            last_error=sa.func.coalesce(T.c.last_error, "") + sa.bindparam("why"),
        )
    )
    lease = (
        sa.update(T)
        .where(T.c.id.in_(sa.bindparam("ids", expanding=True)))
        .values(
            state=PROCESSING,
            lease_until=sa.bindparam("until"),
            leased_by=sa.bindparam("worker"),
            attempts=T.c.attempts + 1,
        )
        .returning(*T.c)
    )
    return bury, lease


_CLAIM = _claim_statements()


def claim(
    engine: Engine,
    worker_id: str,
    limit: int = 1,
    lease: float = 300.0,
    *,
    max_attempts: int = 8,
) -> list[Claimed]:
    """Lease up to `limit` due deliveries, at most one per subject, none whose subject is
    leased already. An expired lease is a crashed worker: its delivery is due again (and
    dead once it has used all its attempts, so a delivery that kills workers stops)."""
    now = utcnow()
    pg = is_postgres(engine)
    with _worker_tx(engine) as conn:
        if pg:
            conn.execute(_CLAIM["lock"])
        conn.execute(
            _CLAIM["bury"],
            {
                "now": now,
                "max_attempts": max_attempts,
                "why": f"; lease expired on the last of {max_attempts} attempts (worker crashed?)",
            },
        )
        lim = max(limit * 4, limit + 8)
        if pg:
            rows = conn.execute(_CLAIM["candidates_pg"], {"now": now, "lim": lim}).all()
        else:
            rows = _sqlite_candidates(conn, now, lim, limit)
        chosen: list[str] = []
        subjects: set[str] = set()
        for row in rows:
            if row.subject and row.subject in subjects:
                continue
            subjects.add(row.subject)
            chosen.append(row.id)
            if len(chosen) >= limit:
                break
        if not chosen:
            return []
        claimed = conn.execute(
            _CLAIM["lease"],
            {"ids": chosen, "until": now + dt.timedelta(seconds=lease), "worker": worker_id},
        ).all()
    return [
        Claimed(
            key=r.id,
            delivery=Delivery(
                id=r.delivery_id, forge=r.forge, event=r.event, body=r.body, headers=r.headers
            ),
            subject=r.subject,
            attempts=r.attempts,
            received_at=r.received_at,
        )
        for r in sorted(claimed, key=lambda r: (r.available_at, r.received_at))
    ]


def _sqlite_candidates(conn: Connection, now: dt.datetime, lim: int, wanted: int) -> list[Any]:
    """The due deliveries in order, none of a leased subject, read from the covering index
    alone (one OR-query makes SQLite read every due row, bodies and all). Pages on while a
    page held only deliveries of subjects that are busy right now."""
    busy = {r.subject for r in conn.execute(_CLAIM["busy_sqlite"], {"now": now})}
    expired = conn.execute(_CLAIM["expired_sqlite"], {"now": now}).all()
    found: list[Any] = []
    offset = 0
    while True:
        page = conn.execute(
            _CLAIM["queued_sqlite"], {"now": now, "lim": lim, "offset": offset}
        ).all()
        found.extend(r for r in page if not r.subject or r.subject not in busy)
        offset += lim
        if len(page) < lim or len({r.subject or r.id for r in found}) >= wanted:
            break
    ready = [r for r in expired if not r.subject or r.subject not in busy]
    return sorted([*found, *ready], key=lambda r: (r.available_at, r.received_at))


def extend(engine: Engine, keys: Sequence[str], worker_id: str, lease: float) -> int:
    """Renew the leases a live worker still holds (its heartbeat)."""
    if not keys:
        return 0
    until = utcnow() + dt.timedelta(seconds=lease)
    with _worker_tx(engine) as conn:
        return conn.execute(
            sa.update(T)
            .where(T.c.id.in_(list(keys)), T.c.leased_by == worker_id, T.c.state == PROCESSING)
            .values(lease_until=until)
        ).rowcount


def complete(
    engine: Engine, key: str, worker_id: str, *, state: str = DONE, note: str | None = None
) -> bool:
    """Mark a leased delivery done (or ignored, with why). False if the lease was lost."""
    if state not in (DONE, IGNORED):
        raise ValueError(f"complete() takes done or ignored, not {state!r}")
    with _worker_tx(engine) as conn:
        done = conn.execute(
            _COMPLETE,
            {"key": key, "worker": worker_id, "state": state, "at": utcnow(), "note": note},
        ).first()
    return done is not None


_COMPLETE = (
    sa.update(T)
    .where(
        T.c.id == sa.bindparam("key"),
        T.c.leased_by == sa.bindparam("worker"),
        T.c.state == PROCESSING,
    )
    .values(
        state=sa.bindparam("state"),
        lease_until=None,
        processed_at=sa.bindparam("at"),
        last_error=sa.bindparam("note"),
    )
    .returning(T.c.id)
)


def fail(
    engine: Engine,
    key: str,
    worker_id: str,
    error: str,
    *,
    max_attempts: int = 8,
    backoff: Backoff | None = None,
) -> str | None:
    """Record a failed attempt: back to the queue after a backoff, or dead when the attempts
    are used up. Returns the new state, or None if this worker no longer held the lease."""
    backoff = backoff or Backoff()
    now = utcnow()
    with _worker_tx(engine) as conn:
        row = conn.execute(
            sa.select(T.c.attempts).where(
                T.c.id == key, T.c.leased_by == worker_id, T.c.state == PROCESSING
            )
        ).first()
        if row is None:
            return None
        dead = row.attempts >= max_attempts
        values: dict[str, Any] = {
            "state": DEAD if dead else QUEUED,
            "lease_until": None,
            "last_error": error[:10_000],
        }
        if dead:
            values["processed_at"] = now
        else:
            values["available_at"] = now + dt.timedelta(seconds=backoff.delay(row.attempts))
        conn.execute(sa.update(T).where(T.c.id == key).values(**values))
    return DEAD if dead else QUEUED


def release(engine: Engine, key: str, worker_id: str) -> bool:
    """Give a leased delivery back untouched (graceful shutdown before it was started)."""
    with _worker_tx(engine) as conn:
        return (
            conn.execute(
                sa.update(T)
                .where(T.c.id == key, T.c.leased_by == worker_id, T.c.state == PROCESSING)
                .values(
                    state=QUEUED,
                    lease_until=None,
                    leased_by=None,
                    attempts=T.c.attempts - 1,
                    available_at=utcnow(),
                )
            ).rowcount
            == 1
        )
