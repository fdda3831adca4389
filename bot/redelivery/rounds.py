"""What every missed-delivery round shares: its report, its counters, a read-only
connection, and the lock that lets one replica run a round at a time."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.engine import Engine

from bot import metrics
from bot.store import advisory_key, is_postgres

PER_PAGE = 100
MAX_PAGES = 50  # 5,000 attempts per round at most: a round never runs away
MAX_ATTEMPTS = 5  # a delivery that failed this many times is left to a human
SYNTHETIC_EVENT = "Merge Request Hook"

REDELIVERIES = Counter(
    "changegate_redeliveries_requested",
    "Missed deliveries a redelivery (GitHub) or a re-check (GitLab) was asked for.",
    ["forge"],
    registry=metrics.REGISTRY,
)
REDELIVERY_ERRORS = Counter(
    "changegate_redelivery_errors",
    "Errors of the missed-delivery jobs (listing or asking failed).",
    ["forge"],
    registry=metrics.REGISTRY,
)


@dataclass
class RedeliveryReport:
    """What one round saw and did, by delivery guid (GitHub) or `path!iid` (GitLab)."""

    listed: int = 0  # delivery attempts (GitHub) or open merge requests (GitLab) looked at
    failed: list[str] = field(default_factory=list)  # latest attempt failed / no status
    in_inbox: list[str] = field(default_factory=list)  # failed, but stored anyway
    given_up: list[str] = field(default_factory=list)  # failed MAX_ATTEMPTS times already
    requested: list[str] = field(default_factory=list)  # redelivery asked / re-check queued
    errors: list[str] = field(default_factory=list)
    skipped: bool = False  # another replica held the job lock


def reading(engine: Engine) -> Any:
    """A read-only connection (on SQLite, one that does not take the write lock)."""
    return engine.connect().execution_options(sqlite_deferred=True)


@contextlib.contextmanager
def job_lock(engine: Engine) -> Iterator[bool]:
    """True when this process may run a round: always on SQLite (one host), on PostgreSQL
    when no other replica holds the job's advisory lock."""
    if not is_postgres(engine):
        yield True
        return
    with engine.connect() as conn:
        held = bool(
            conn.execute(
                sa.select(sa.func.pg_try_advisory_lock(advisory_key("redelivery")))
            ).scalar()
        )
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(advisory_key("redelivery"))))
                conn.commit()


def aware(moment: dt.datetime) -> dt.datetime:
    """`moment`, as UTC if it has no zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
