"""The ack path's group-commit writer (`inbox.Writer`) on SQLite and PostgreSQL: what
waits while one commit is on its way to disk goes into the next one; every caller learns
whether its delivery was new only after the commit; one bad delivery never fails the
others; a database that cannot be reached fails the batch with a database error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, wait
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from bot import inbox
from bot.forges import Delivery
from bot.store import deliveries as T


def delivery(n: int | str, headers: dict[str, object] | None = None) -> Delivery:
    return Delivery(
        id=f"d-{n}",
        forge="github",
        event="pull_request",
        body=b'{"n": %d}' % hash(n) if isinstance(n, int) else b"{}",
        headers=headers if headers is not None else {"x-github-event": "pull_request"},  # type: ignore[arg-type]
    )


class Gate:
    """Holds the writer inside its first transaction until opened, so that the test can
    queue deliveries behind a commit that is "on its way to disk"; counts transactions."""

    def __init__(self, engine: Engine) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.transactions = 0
        event.listen(engine, "begin", self._on_begin)

    def _on_begin(self, _conn: Connection) -> None:
        self.transactions += 1
        if self.transactions == 1:
            self.entered.set()
            assert self.opened.wait(30), "the test never opened the gate"


@pytest.fixture
def writer(engine: Engine) -> Iterator[inbox.Writer]:
    w = inbox.Writer(engine, max_batch=16)
    yield w
    w.stop()


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(T.c.id)).scalars())


def test_deliveries_waiting_for_a_commit_share_the_next_one(
    engine: Engine, writer: inbox.Writer
) -> None:
    gate = Gate(engine)
    first = writer.submit(delivery(0), "github:acme/app#1")
    assert gate.entered.wait(30)
    queued = [writer.submit(delivery(n), f"github:acme/app#{n % 3}") for n in range(1, 41)]
    assert not any(f.done() for f in [first, *queued]), "answered before its commit"
    gate.opened.set()
    done, _ = wait([first, *queued], timeout=60)
    assert len(done) == 41
    assert all(f.result() is True for f in [first, *queued])
    # 40 deliveries queued behind the first commit: 3 commits of at most 16, not 40
    assert gate.transactions == 1 + 3
    assert stored_ids(engine) == sorted(f"github:d-{n}" for n in range(41))
    row = inbox.get(engine, "github:d-7")
    assert row is not None and row["subject"] == "github:acme/app#1"


def test_a_repeated_delivery_id_is_new_once_even_within_one_batch(
    engine: Engine, writer: inbox.Writer
) -> None:
    assert writer.submit(delivery("seen"), "s").result(30) is True
    gate = Gate(engine)
    blocker = writer.submit(delivery("blocker"))
    assert gate.entered.wait(30)
    twins = [writer.submit(delivery("twin"), "s") for _ in range(3)]
    again = writer.submit(delivery("seen"), "s")
    gate.opened.set()
    assert blocker.result(30) is True
    assert [f.result(30) for f in twins] == [True, False, False]
    assert again.result(30) is False
    assert stored_ids(engine) == ["github:d-blocker", "github:d-seen", "github:d-twin"]


def test_one_bad_delivery_does_not_fail_the_others(engine: Engine, writer: inbox.Writer) -> None:
    gate = Gate(engine)
    blocker = writer.submit(delivery("blocker"))
    assert gate.entered.wait(30)
    good = [writer.submit(delivery(n)) for n in range(5)]
    # a header value that cannot be stored (not JSON) fails only its own delivery
    bad = writer.submit(delivery("bad", headers={"x-github-event": object()}))
    more = [writer.submit(delivery(n)) for n in range(5, 10)]
    gate.opened.set()
    assert blocker.result(30) is True
    assert all(f.result(30) is True for f in good + more)
    with pytest.raises((sa.exc.StatementError, TypeError, ValueError)):
        bad.result(30)
    assert len(stored_ids(engine)) == 11
    assert writer.submit(delivery("after")).result(30) is True  # the writer lives on


def test_a_caller_that_went_away_still_gets_its_delivery_stored(
    engine: Engine, writer: inbox.Writer
) -> None:
    gate = Gate(engine)
    blocker = writer.submit(delivery("blocker"))
    assert gate.entered.wait(30)
    gone = writer.submit(delivery("gone"))
    assert gone.cancel()  # the client hung up before the commit (the forge sends it again)
    gate.opened.set()
    assert blocker.result(30) is True
    assert writer.submit(delivery("next")).result(30) is True
    assert "github:d-gone" in stored_ids(engine)


def test_stop_writes_what_is_queued_then_refuses_new_work(engine: Engine) -> None:
    writer = inbox.Writer(engine)
    gate = Gate(engine)
    futures = [writer.submit(delivery("blocker"))]
    assert gate.entered.wait(30)
    futures += [writer.submit(delivery(n)) for n in range(20)]
    stopper = threading.Thread(target=writer.stop, args=(30,))
    stopper.start()
    gate.opened.set()
    stopper.join(60)
    assert not stopper.is_alive()
    assert all(f.result(0) is True for f in futures)
    assert len(stored_ids(engine)) == 21
    with pytest.raises(RuntimeError, match="stopped"):
        writer.submit(delivery("late"))


def test_a_database_that_cannot_be_opened_fails_every_caller_with_a_database_error(
    tmp_path: Path,
) -> None:
    # the path is a directory: SQLite cannot open it, as when the volume is gone
    broken = sa.create_engine(f"sqlite:///{tmp_path}")
    writer = inbox.Writer(broken)
    futures: list[Future[bool]] = [writer.submit(delivery(n)) for n in range(5)]
    try:
        for f in futures:
            with pytest.raises(sa.exc.OperationalError):
                f.result(30)
    finally:
        writer.stop()
        broken.dispose()


def test_a_writer_thread_that_ended_is_replaced_and_nothing_waiting_is_lost(
    engine: Engine, writer: inbox.Writer
) -> None:
    assert writer.submit(delivery("first")).result(30) is True
    ended = writer._thread
    assert ended is not None
    writer._queue.put(None)  # the thread ends as if it had died, without stop()
    ended.join(30)
    assert not ended.is_alive()
    assert writer.submit(delivery("second")).result(30) is True
    assert writer._thread is not ended and writer._thread is not None
    assert writer._thread.is_alive()
    assert stored_ids(engine) == ["github:d-first", "github:d-second"]
