"""Group commit: the deliveries that arrive while one commit is on its way to disk are
written by the next one."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import metrics
from bot.forges import Delivery
from bot.inbox.intake import store_many

log = logging.getLogger(__name__)


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
