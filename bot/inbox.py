"""The durable inbox: deliveries stored before they are answered, then claimed by workers.

A delivery goes `queued -> processing -> done | ignored`, or back to `queued` with an
exponential, jittered backoff when processing fails, and to `dead` after a bounded number
of attempts (re-queued by `changegate` CLI). A claim is a lease: a worker that dies keeps
nothing, since an expired lease makes the delivery claimable again.

Two deliveries with the same subject (one pull request) are never leased at once. Claims
are serialized so that this check is exact: on SQLite by the single writer (transactions
begin IMMEDIATE), on PostgreSQL by a transaction-scoped advisory lock taken before the
claim query reads, plus `FOR UPDATE SKIP LOCKED` so a claim never waits on rows that
other workers are completing. A claim is one short statement pair, so serializing it
costs little next to the work it hands out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot import metrics
from bot.forges import Delivery
from bot.store import advisory_key, is_postgres, utcnow
from bot.store import deliveries as T

log = logging.getLogger(__name__)

QUEUED, PROCESSING, DONE, IGNORED, DEAD = "queued", "processing", "done", "ignored", "dead"
STATES = (QUEUED, PROCESSING, DONE, IGNORED, DEAD)

#: Headers kept with a delivery: what a forge may need later, nothing secret.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-github-delivery",
        "x-github-event",
        "x-github-hook-id",
        "x-github-hook-installation-target-id",
        "x-github-hook-installation-target-type",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "x-gitlab-instance",
        "x-gitlab-webhook-uuid",
        "idempotency-key",
        "x-slack-request-timestamp",
    }
)


@dataclass(frozen=True)
class Claimed:
    """A leased delivery: what the worker processes, and how to find it again."""

    key: str  # the inbox primary key, `forge:delivery-id`
    delivery: Delivery
    subject: str
    attempts: int  # including this one
    received_at: dt.datetime


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): base * 2**(n-1), capped, with "equal jitter"."""

    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        full = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        return full / 2 + (rng or random).uniform(0, full / 2)


def key_of(forge: str, delivery_id: str) -> str:
    return f"{forge}:{delivery_id}"


def keep_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() in KEPT_HEADERS}


def _insert_statements() -> dict[str, Any]:
    """The inbox insert on PostgreSQL, built once: building SQL constructs per webhook
    costs about as much Python time as the database needs to run them."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return {
        "postgresql": pg_insert(T).on_conflict_do_nothing(index_elements=["id"]).returning(T.c.id)
    }


_INSERT = _insert_statements()
_COLUMNS = tuple(c.name for c in T.columns)


def _row(delivery: Delivery, subject: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": key_of(delivery.forge, delivery.id),
        "forge": delivery.forge,
        "delivery_id": delivery.id,
        "event": delivery.event,
        "headers": dict(delivery.headers),
        "body": delivery.body,
        "subject": (subject or "").replace("\x00", ""),  # PostgreSQL text holds no NUL
        "state": QUEUED,
        "attempts": 0,
        "lease_until": None,
        "leased_by": None,
        "last_error": None,
        "processed_at": None,
        "available_at": now,
        "received_at": now,
    }


def _insert_sqlite(conn: Connection, rows: dict[str, dict[str, Any]]) -> set[str]:
    """Insert the rows whose keys are new, and return those keys. On SQLite the ack path
    is bound by Python time under the GIL, and SQLAlchemy's INSERT .. RETURNING of a
    batch costs ~0.035 ms a row more than this (90 vs 54 µs of CPU per 25 KB row, in
    batches of 8): here the values are converted
    with SQLAlchemy's own bind processors (the same text a Core insert stores), then the
    driver runs one SELECT and one executemany. The transaction began IMMEDIATE: nobody
    inserts in between."""
    marks = ", ".join("?" * len(rows))
    seen = {
        r[0]
        for r in conn.exec_driver_sql(
            f"SELECT id FROM deliveries WHERE id IN ({marks})", tuple(rows)
        )
    }
    convert = _sqlite_converters(conn.dialect)
    new = [
        tuple(f(row[c]) if f else row[c] for c, f in convert)
        for key, row in rows.items()
        if key not in seen
    ]
    if new:
        conn.exec_driver_sql(_SQLITE_INSERT, new)
    return set(rows) - seen


_SQLITE_INSERT = (
    f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)


@functools.cache
def _sqlite_converters(dialect: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((c.name, c.type.bind_processor(dialect)) for c in T.columns)


def store(engine: Engine, delivery: Delivery, subject: str = "") -> bool:
    """Insert a delivery and commit; False (and nothing written) if its id was seen before."""
    return store_many(engine, [(delivery, subject)])[0]


def store_many(engine: Engine, items: Sequence[tuple[Delivery, str]]) -> list[bool]:
    """Insert deliveries in one transaction (one commit, one fsync); for each, whether it
    is new. A delivery id seen before, or earlier in `items`, is not written again."""
    if not items:
        return []
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for delivery, subject in items:
        key = key_of(delivery.forge, delivery.id)
        rows.setdefault(key, _row(delivery, subject, now))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            inserted = _insert_sqlite(conn, rows)
        else:
            inserted = {r.id for r in conn.execute(_INSERT["postgresql"], list(rows.values()))}
    fresh: list[bool] = []
    for delivery, _subject in items:
        key = key_of(delivery.forge, delivery.id)
        fresh.append(key in inserted)
        inserted.discard(key)  # a second copy in the same batch is a duplicate
    return fresh


class Writer:
    """The ack path's store, with group commit: every delivery that arrives while one
    commit is on its way to disk is written by the next commit, in one transaction.

    One commit per delivery caps a server at one fsync per webhook, and on SQLite all of
    them queue for the single writer anyway. Here one thread writes: it takes what is
    waiting (up to `max_batch` deliveries or `max_batch_bytes` of bodies), inserts it with
    one statement, commits, and only then resolves each caller's future, so a 202 still
    means "on disk". A batch that fails for a reason in its data is retried one delivery
    at a time, so one bad delivery never fails the others; a database that is down fails
    the batch at once (the forge retries, nothing is accepted that is not stored).
    """

    def __init__(
        self, engine: Engine, *, max_batch: int = 64, max_batch_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False

    def submit(self, delivery: Delivery, subject: str = "") -> Future[bool]:
        """Queue a delivery; the future says whether it was new once it is committed."""
        thread = self._thread
        if thread is None or self._stopped or not thread.is_alive():
            self._start()
        future: Future[bool] = Future()
        self._queue.put(_Pending(delivery, subject, future))
        return future

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        with self._start_lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _start(self) -> None:
        with self._start_lock:
            if self._stopped:
                raise RuntimeError("the inbox writer is stopped")
            if self._thread is not None and self._thread.is_alive():
                return
            if self._thread is not None:  # what it had taken failed its callers; the rest waits
                log.error("the inbox writer thread had ended; starting a new one")
            self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size, last = [first], len(first.delivery.body), False
            while len(batch) < self.max_batch and size < self.max_batch_bytes:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                    break
                batch.append(item)
                size += len(item.delivery.body)
            self._write(batch)
            if last:
                return

    def _write(self, batch: list[_Pending]) -> None:
        # RUNNING futures cannot be cancelled any more; one whose caller went away
        # (cancelled) is still written: its forge will send it again, and it dedupes.
        waiting = [p.future.set_running_or_notify_cancel() for p in batch]
        started = time.perf_counter()
        self._write_running(batch, waiting)
        metrics.STORE_SECONDS.observe(time.perf_counter() - started)
        metrics.STORE_BATCH.observe(len(batch))

    def _write_running(self, batch: list[_Pending], waiting: list[bool]) -> None:
        try:
            fresh = store_many(self.engine, [(p.delivery, p.subject) for p in batch])
        except Exception as exc:
            if not _in_the_data(exc):
                self._fail(batch, waiting, exc)
                return
            if len(batch) == 1:
                if waiting[0]:
                    batch[0].future.set_exception(exc)
                return
            for one, wait in zip(batch, waiting, strict=True):
                self._write_running([one], [wait])
            return
        except BaseException as exc:
            self._fail(batch, waiting, exc)
            raise
        for p, wait, new in zip(batch, waiting, fresh, strict=True):
            if wait:
                p.future.set_result(new)

    @staticmethod
    def _fail(batch: list[_Pending], waiting: list[bool], exc: BaseException) -> None:
        for p, wait in zip(batch, waiting, strict=True):
            if wait:
                p.future.set_exception(exc)


def _in_the_data(exc: Exception) -> bool:
    """Whether a failed insert may be the fault of one delivery in it (a value the
    database refuses) rather than of the database (down, locked, out of connections)."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return False
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return False
    return isinstance(exc, sa.exc.StatementError | ValueError | TypeError)


@dataclass(frozen=True)
class _Pending:
    delivery: Delivery
    subject: str
    future: Future[bool]


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


def requeue_dead(engine: Engine, delivery_id: str | None = None) -> int:
    """Put dead deliveries back in the queue with fresh attempts: all of them, or one
    (named by its inbox key `forge:id` or by the forge's delivery id). Returns how many."""
    where = [T.c.state == DEAD]
    if delivery_id:
        where.append(sa.or_(T.c.id == delivery_id, T.c.delivery_id == delivery_id))
    with engine.begin() as conn:
        return conn.execute(
            sa.update(T)
            .where(*where)
            .values(
                state=QUEUED,
                attempts=0,
                available_at=utcnow(),
                lease_until=None,
                leased_by=None,
                processed_at=None,
            )
        ).rowcount


@dataclass(frozen=True)
class QueueStats:
    by_state: dict[str, int]
    oldest_queued_age: float  # seconds; 0 when nothing waits


def stats(engine: Engine) -> QueueStats:
    """Deliveries per state and the age of the oldest waiting one, for metrics."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        counts: dict[str, int] = {
            state: n
            for state, n in conn.execute(sa.select(T.c.state, sa.func.count()).group_by(T.c.state))
        }
        oldest = conn.execute(
            sa.select(sa.func.min(T.c.received_at)).where(T.c.state.in_([QUEUED, PROCESSING]))
        ).scalar()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return QueueStats(by_state={s: int(counts.get(s, 0)) for s in STATES}, oldest_queued_age=age)


def get(engine: Engine, key: str) -> dict[str, Any] | None:
    """One inbox row as a dict (tests, CLI, admin pages)."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        row = conn.execute(sa.select(T).where(T.c.id == key)).first()
    return dict(row._mapping) if row is not None else None
