"""The inbox on SQLite and PostgreSQL: idempotent store, leases, backoff, dead letters,
per-subject serialization."""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import inbox
from bot.forges import Delivery
from bot.store import deliveries as T


def delivery(n: int | str, event: str = "pull_request", body: bytes = b"{}") -> Delivery:
    return Delivery(
        id=f"d-{n}", forge="github", event=event, body=body, headers={"x-github-event": event}
    )


def state_of(engine: Engine, key: str) -> dict:  # type: ignore[type-arg]
    row = inbox.get(engine, key)
    assert row is not None
    return row


def test_store_is_idempotent_by_delivery_id(engine: Engine) -> None:
    first = delivery(1, body=b'{"a": 1}')
    assert inbox.store(engine, first, "github:acme/app#1") is True
    assert inbox.store(engine, first, "github:acme/app#1") is False
    assert inbox.store(engine, delivery(1, body=b'{"other": 2}')) is False
    row = state_of(engine, "github:d-1")
    assert (row["state"], row["body"], row["subject"]) == (
        "queued",
        b'{"a": 1}',
        "github:acme/app#1",
    )
    assert row["headers"] == {"x-github-event": "pull_request"}
    # the same id from another forge is another delivery
    other = Delivery(id="d-1", forge="gitlab", event="Merge Request Hook", body=b"{}")
    assert inbox.store(engine, other) is True
    assert inbox.stats(engine).by_state["queued"] == 2


def test_claim_leases_and_complete(engine: Engine) -> None:
    for n in range(3):
        inbox.store(engine, delivery(n), f"s{n}")
    got = inbox.claim(engine, "w1", limit=2, lease=60)
    assert [c.key for c in got] == ["github:d-0", "github:d-1"]
    assert all(c.attempts == 1 for c in got)
    assert got[0].delivery == delivery(0)
    assert [c.key for c in inbox.claim(engine, "w2", limit=5, lease=60)] == ["github:d-2"]
    assert inbox.claim(engine, "w3", limit=5, lease=60) == []
    assert inbox.complete(engine, "github:d-0", "w1") is True
    assert inbox.complete(engine, "github:d-1", "w2") is False  # not w2's lease
    assert inbox.complete(engine, "github:d-1", "w1", state="ignored", note="not handled")
    row = state_of(engine, "github:d-1")
    assert (row["state"], row["last_error"], row["lease_until"]) == ("ignored", "not handled", None)
    assert row["processed_at"] is not None
    stats = inbox.stats(engine)
    assert stats.by_state == {"queued": 0, "processing": 1, "done": 1, "ignored": 1, "dead": 0}


def test_expired_lease_returns_a_crashed_workers_delivery(engine: Engine) -> None:
    inbox.store(engine, delivery(1), "s")
    [first] = inbox.claim(engine, "crashed", lease=0.2)
    assert inbox.claim(engine, "w2", lease=60) == []
    time.sleep(0.3)
    [again] = inbox.claim(engine, "w2", lease=60)
    assert (again.key, again.attempts) == (first.key, 2)
    assert inbox.complete(engine, first.key, "crashed") is False  # the dead worker lost it
    assert inbox.complete(engine, first.key, "w2") is True


def test_heartbeat_keeps_a_slow_delivery(engine: Engine) -> None:
    inbox.store(engine, delivery(1))
    [item] = inbox.claim(engine, "slow", lease=0.3)
    for _ in range(3):
        time.sleep(0.15)
        assert inbox.extend(engine, [item.key], "slow", 0.3) == 1
        assert inbox.claim(engine, "thief", lease=60) == []
    assert inbox.extend(engine, [item.key], "thief", 0.3) == 0


def test_failures_back_off_with_jitter_then_dead_letter(engine: Engine) -> None:
    inbox.store(engine, delivery(1))
    backoff = inbox.Backoff(base_seconds=0.05, max_seconds=0.2)
    seen_delays = []
    for attempt in range(1, 4):
        [item] = _claim_when_due(engine, "w")
        assert item.attempts == attempt
        before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        result = inbox.fail(
            engine, item.key, "w", f"boom {attempt}", max_attempts=3, backoff=backoff
        )
        row = state_of(engine, item.key)
        if attempt < 3:
            assert result == "queued"
            assert row["state"] == "queued"
            after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            seen_delays.append(
                (
                    (row["available_at"] - after).total_seconds(),  # at least
                    (row["available_at"] - before).total_seconds(),  # at most
                )
            )
            # later than the failure (comparing with the clock after it would be a race:
            # on a loaded machine 25 ms pass quickly, and the claim would find it due)
            assert row["available_at"] > before
        else:
            assert result == "dead"
            assert row["state"] == "dead" and row["last_error"] == "boom 3"
    # attempt 1 waits 0.025..0.05 s, attempt 2 waits 0.05..0.1 s (measured around the call)
    assert seen_delays[0][0] <= 0.05 and seen_delays[0][1] >= 0.025
    assert seen_delays[1][0] <= 0.1 and seen_delays[1][1] >= 0.05
    assert inbox.fail(engine, "github:d-1", "w", "late", max_attempts=3) is None  # not leased
    assert inbox.requeue_dead(engine, "d-1") == 1
    [item] = inbox.claim(engine, "w", lease=60)
    assert item.attempts == 1


def test_a_delivery_backing_off_is_not_claimed_before_it_is_due(engine: Engine) -> None:
    inbox.store(engine, delivery(1))
    [item] = inbox.claim(engine, "w", lease=60)
    hour = inbox.Backoff(base_seconds=3600, max_seconds=3600)
    assert inbox.fail(engine, item.key, "w", "boom", max_attempts=3, backoff=hour) == "queued"
    assert inbox.claim(engine, "w2", lease=60) == []


def _claim_when_due(engine: Engine, worker: str) -> list[inbox.Claimed]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = inbox.claim(engine, worker, lease=60)
        if got:
            return got
        time.sleep(0.01)
    raise AssertionError("delivery never became due")


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (5, 16.0, 32.0), (12, 300.0, 600.0)],
)
def test_backoff_doubles_with_equal_jitter_and_a_cap(attempt: int, low: float, high: float) -> None:
    backoff = inbox.Backoff(base_seconds=2.0, max_seconds=600.0)
    delays = [backoff.delay(attempt, random.Random(seed)) for seed in range(50)]
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 40  # jittered, so retries of many deliveries spread out


def test_requeue_all_dead(engine: Engine) -> None:
    for n in range(3):
        inbox.store(engine, delivery(n))
        [item] = inbox.claim(engine, "w", lease=60)
        inbox.fail(engine, item.key, "w", "nope", max_attempts=1)
    assert inbox.stats(engine).by_state["dead"] == 3
    assert inbox.requeue_dead(engine, "github:d-0") == 1  # by inbox key
    assert inbox.requeue_dead(engine, None) == 2
    assert inbox.requeue_dead(engine, None) == 0
    assert inbox.stats(engine).by_state["queued"] == 3


def test_lease_expiring_on_the_last_attempt_dead_letters(engine: Engine) -> None:
    inbox.store(engine, delivery(1))
    for _ in range(2):
        assert inbox.claim(engine, "crashing", lease=0.05, max_attempts=2)
        time.sleep(0.1)
    assert inbox.claim(engine, "w", lease=60, max_attempts=2) == []
    row = state_of(engine, "github:d-1")
    assert row["state"] == "dead" and "lease expired" in row["last_error"]


def test_one_subject_is_never_leased_twice(engine: Engine) -> None:
    inbox.store(engine, delivery("a1"), "github:acme/app#1")
    inbox.store(engine, delivery("a2"), "github:acme/app#1")
    inbox.store(engine, delivery("b1"), "github:acme/app#2")
    inbox.store(engine, delivery("x1"), "")  # no subject: never serialized
    inbox.store(engine, delivery("x2"), "")
    first = inbox.claim(engine, "w1", limit=10, lease=60)
    assert [c.key for c in first] == ["github:d-a1", "github:d-b1", "github:d-x1", "github:d-x2"]
    assert inbox.claim(engine, "w2", limit=10, lease=60) == []  # a2 waits for a1
    inbox.complete(engine, "github:d-a1", "w1")
    [second] = inbox.claim(engine, "w2", limit=10, lease=60)
    assert second.key == "github:d-a2"


def test_a_retried_delivery_still_blocks_its_subject_only_while_leased(engine: Engine) -> None:
    inbox.store(engine, delivery("a1"), "s")
    inbox.store(engine, delivery("a2"), "s")
    [a1] = inbox.claim(engine, "w", lease=60)
    inbox.fail(engine, a1.key, "w", "x", backoff=inbox.Backoff(30, 60))  # a1 waits 15 s+
    [a2] = inbox.claim(engine, "w", lease=60)  # the subject is free while a1 backs off
    assert a2.key == "github:d-a2"


def test_queue_age_reports_the_oldest_waiting(engine: Engine) -> None:
    inbox.store(engine, delivery(1))
    with engine.begin() as conn:
        conn.execute(
            sa.update(T).values(
                received_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
            )
        )
    inbox.store(engine, delivery(2))
    stats = inbox.stats(engine)
    assert 299 <= stats.oldest_queued_age <= 330
