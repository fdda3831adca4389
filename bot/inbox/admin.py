"""Operating the inbox: re-queue the dead, count what waits, read one row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.inbox.states import DEAD, PROCESSING, QUEUED, STATES
from bot.store import deliveries as T
from bot.store import utcnow


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
