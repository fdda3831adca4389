"""Workers: claim a delivery, let its forge parse it, hand the work on, record the result.

The same `WorkerPool` runs in `changegate worker` processes (`changegate serve` starts
them as its children: bot/worker_processes.py) and as threads in an app that
`create_app(workers=N)` builds (started by the app's lifespan). Stopping is graceful: workers stop
claiming, finish what they hold, and a heartbeat renews the leases of in-flight work so a
slow delivery is not taken over while it is still being processed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot import governor, inbox, metrics, store
from bot.forges import Forge, Work
from bot.forges.github import GitHubForge
from bot.forges.gitlab import GitLabForge
from bot.settings import Settings
from bot.setup import pending, stored
from bot.worker_processes import follow_parent

log = logging.getLogger(__name__)


def build_forges(settings: Settings, *, awaiting_app: bool = False) -> dict[str, Forge]:
    """The forges whose settings are complete (or kept by the start page's registration:
    `bot.setup.stored`). An absent setting: forge off; with `awaiting_app`
    (servers and workers) GitHub is a forge that becomes the App once it is registered."""
    forges: dict[str, Forge] = {}
    if not stored.refresh(settings):
        if awaiting_app:
            forges["github"] = pending.PendingGitHub(settings)
    elif settings.github_enabled:
        forges["github"] = GitHubForge.from_settings(settings)
    if settings.gitlab_enabled:
        forges["gitlab"] = GitLabForge.from_settings(settings)
    return forges


@dataclass
class WorkerConfig:
    lease: float = 300.0
    max_attempts: int = 8
    backoff: inbox.Backoff = field(default_factory=inbox.Backoff)
    poll_interval: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            lease=settings.lease_seconds,
            max_attempts=settings.max_attempts,
            backoff=inbox.Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds),
            poll_interval=settings.poll_interval_seconds,
        )


#: Processes deliveries that are not a forge's (Slack clicks): returns (state, note).
SourceHandler = Callable[[inbox.Claimed], tuple[str, str | None]]
#: Handles a forge's work by its action ("evaluate", "deployment-gate"): (state, note).
ActionHandler = Callable[[Work, Forge, inbox.Claimed], tuple[str, str | None]]
#: (interval in seconds, job): periodic jobs such as the approvals' expiry sweep.
Periodic = tuple[float, Callable[[], Any]]


@dataclass(frozen=True)
class Handlers:
    """What workers do with what they claim, plugged in by the entry points
    (`bot.governor.Governor`, and tests over it) without this module knowing them:
    `sources` by delivery forge name ("slack", "changegate"), `actions` by the action a
    forge parsed a delivery into ("evaluate", "deployment-gate"), and `periodic` jobs."""

    sources: Mapping[str, SourceHandler] = field(default_factory=dict)
    actions: Mapping[str, ActionHandler] = field(default_factory=dict)
    periodic: Sequence[Periodic] = ()

    def over(self, base: Handlers) -> Handlers:
        """These handlers over `base`'s: a source or action of both is this one's."""
        return Handlers(
            sources={**base.sources, **self.sources},
            actions={**base.actions, **self.actions},
            periodic=[*base.periodic, *self.periodic],
        )


@dataclass(frozen=True)
class WorkerOptions:
    """What `run_workers` would otherwise take from its settings or the process:
    `count` and `forges` override the settings' (tests inject a test forge), `handlers`
    are plugged in over the governor's; `install_signals` off and a `stop_event` let a
    test run the workers on a thread; `wake_fd` is the pipe from a `changegate serve`
    parent (see `bot.worker_processes`)."""

    count: int | None = None
    forges: Mapping[str, Forge] | None = None
    handlers: Handlers = Handlers()
    install_signals: bool = True
    stop_event: threading.Event | None = None
    wake_fd: int | None = None


class WorkerPool:
    """`count` worker threads and one heartbeat thread over one inbox.

    Deliveries go to their forge to be parsed into work, and the work to the handler of
    its action (`handlers.actions`); deliveries that are no forge's go to
    `handlers.sources`; `handlers.periodic` jobs run on one more thread, each at its
    interval. `wake`, when given, is the event others set to end the workers' idling (a
    delivery was stored).
    """

    def __init__(
        self,
        engine: Engine,
        forges: Mapping[str, Forge],
        config: WorkerConfig,
        *,
        count: int = 2,
        handlers: Handlers = Handlers(),
        wake: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.periodic = [(max(0.01, interval), job) for interval, job in handlers.periodic]
        self.forges = dict(forges)
        self.sources = dict(handlers.sources)
        self.actions = dict(handlers.actions)
        self.config = config
        self.count = count
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._wake = wake if wake is not None else threading.Event()
        self._threads: list[threading.Thread] = []
        self._inflight: dict[str, str] = {}  # delivery key -> worker id
        self._inflight_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.count):
            wid = f"{self.name}/{i}"
            t = threading.Thread(target=self._run, args=(wid,), name=f"worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        hb = threading.Thread(target=self._heartbeat, name="worker-heartbeat", daemon=True)
        self._threads.append(hb)
        hb.start()
        if self.periodic:
            ticker = threading.Thread(target=self._tick, name="worker-periodic", daemon=True)
            self._threads.append(ticker)
            ticker.start()
        log.info("%d workers started (%s)", self.count, self.name)

    def wake(self) -> None:
        """A delivery was just stored: stop idling now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop claiming, let in-flight deliveries finish (up to `timeout`)."""
        self._stop.set()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        busy = [t.name for t in self._threads if t.is_alive()]
        if busy:
            log.warning("workers still busy at shutdown: %s; their leases will expire", busy)
        else:
            log.info("workers stopped")

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the loop --------------------------------------------------------------------
    def _run(self, worker_id: str) -> None:
        while not self._stop.is_set():
            try:
                claimed = inbox.claim(
                    self.engine,
                    worker_id,
                    limit=1,
                    lease=self.config.lease,
                    max_attempts=self.config.max_attempts,
                )
            except SQLAlchemyError as exc:
                log.warning("claim failed (database unavailable?): %s", exc.__class__.__name__)
                self._idle(min(5.0, self.config.poll_interval * 2))
                continue
            if not claimed:
                self._idle(self.config.poll_interval)
                continue
            for item in claimed:
                with self._inflight_lock:
                    self._inflight[item.key] = worker_id
                try:
                    self.process(item, worker_id)
                finally:
                    with self._inflight_lock:
                        self._inflight.pop(item.key, None)

    def _idle(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _tick(self) -> None:
        """Run each periodic job at its interval until stopped; a failing job is logged
        and tried again at its next turn."""
        due = [time.monotonic() + interval for interval, _job in self.periodic]
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (interval, job) in enumerate(self.periodic):
                if now < due[i]:
                    continue
                due[i] = now + interval
                try:
                    job()
                except Exception:  # noqa: BLE001 - a periodic job must not stop the others
                    log.exception("periodic job %s failed", getattr(job, "__name__", job))
            self._stop.wait(max(0.01, min(due) - time.monotonic()))

    def _heartbeat(self) -> None:
        """Renew held leases every third of a lease, until the last worker has exited."""
        interval = max(0.05, self.config.lease / 3)
        workers = [
            t for t in self._threads if t.name.startswith("worker-") and t.name[7:].isdigit()
        ]
        while any(t.is_alive() for t in workers):
            if self._stop.is_set():
                time.sleep(min(interval, 0.1))
            else:
                self._stop.wait(interval)
            with self._inflight_lock:
                held: dict[str, list[str]] = {}
                for key, wid in self._inflight.items():
                    held.setdefault(wid, []).append(key)
            for wid, keys in held.items():
                try:
                    inbox.extend(self.engine, keys, wid, self.config.lease)
                except SQLAlchemyError as exc:
                    log.warning("lease renewal failed: %s", exc.__class__.__name__)

    # -- one delivery ----------------------------------------------------------------
    def process(self, item: inbox.Claimed, worker_id: str) -> str:
        """Process one claimed delivery to an end state; returns the state recorded."""
        d = item.delivery
        started = time.monotonic()
        with metrics.delivery_context(item.key):
            try:
                state, note = self._handle(item)
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then dead
                error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
                metrics.FAILED.labels(d.forge, d.event).inc()
                try:
                    result = inbox.fail(
                        self.engine,
                        item.key,
                        worker_id,
                        error,
                        max_attempts=self.config.max_attempts,
                        backoff=self.config.backoff,
                    )
                except SQLAlchemyError:
                    log.exception("could not record the failure; the lease will expire")
                    return inbox.PROCESSING
                if result == inbox.DEAD:
                    metrics.DEAD.labels(d.forge, d.event).inc()
                    log.error(
                        "delivery dead after %d attempts: %s",
                        item.attempts,
                        error,
                        extra={"event": d.event},
                    )
                else:
                    log.warning(
                        "attempt %d failed, will retry: %s: %s",
                        item.attempts,
                        type(exc).__name__,
                        exc,
                        extra={"event": d.event},
                    )
                return result or inbox.PROCESSING
            finally:
                metrics.LATENCY.labels(d.forge, d.event).observe(time.monotonic() - started)
            if not inbox.complete(self.engine, item.key, worker_id, state=state, note=note):
                log.warning("lease lost before completion; another worker took over")
                return inbox.PROCESSING
            metrics.PROCESSED.labels(d.forge, d.event, state).inc()
            log.info("%s %s: %s", d.forge, d.event, state if not note else f"{state} ({note})")
            return state

    def _handle(self, item: inbox.Claimed) -> tuple[str, str | None]:
        d = item.delivery
        source = self.sources.get(d.forge)
        if source is not None:
            return source(item)
        forge = self.forges.get(d.forge)
        if forge is None:
            raise LookupError(f"forge {d.forge!r} is not configured on this worker")
        work = forge.parse(d)
        if work.action == "ignore":
            return inbox.IGNORED, work.reason or f"event {d.event} is not handled"
        action = self.actions.get(work.action)
        if action is None:
            return inbox.IGNORED, f"no handler for action {work.action!r}"
        return action(work, forge, item)


def governed_pool(
    parts: governor.Governor,
    engine: Engine,
    forges: Mapping[str, Forge],
    config: WorkerConfig,
    *,
    count: int,
    handlers: Handlers = Handlers(),
) -> WorkerPool:
    """Workers running the governor's handlers (`handlers` over them: tests plug in
    their own), woken when the governor stores a recheck for itself."""
    governed = Handlers(sources=parts.sources, actions=parts.actions, periodic=parts.periodic)
    return WorkerPool(
        engine, forges, config, count=count, handlers=handlers.over(governed), wake=parts.doorbell
    )


def run_workers(settings: Settings, options: WorkerOptions = WorkerOptions()) -> None:
    """`changegate worker`: run workers until SIGTERM/SIGINT, then stop gracefully."""
    metrics.configure_logging()
    holder = governor.PolicyHolder.from_settings(settings)
    engine = store.make_engine(settings.database_url)
    store.ensure_current(engine, settings.database_url, auto_upgrade_fresh_sqlite=True)
    forges = (
        dict(options.forges)
        if options.forges is not None
        else build_forges(settings, awaiting_app=True)
    )
    n = settings.worker_count if options.count is None else options.count
    parts = governor.build(settings, engine, holder, forges)
    config = WorkerConfig.from_settings(settings)
    pool = governed_pool(parts, engine, forges, config, count=max(1, n), handlers=options.handlers)
    stop = options.stop_event or threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after in-flight deliveries", signal.Signals(signum).name)
        stop.set()

    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, registry=metrics.REGISTRY)
        log.info("worker metrics on :%d/metrics", settings.worker_metrics_port)
    if options.install_signals:
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    log.info("worker process up: forges %s, policy %s", sorted(forges) or "none", settings.policy)
    pool.start()
    if options.wake_fd is not None:
        follow_parent(options.wake_fd, wake=pool.wake, gone=stop.set)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        pool.stop(timeout=settings.shutdown_timeout_seconds)
        engine.dispose()
