"""Running the rounds: each on a daemon thread, every `interval` seconds."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from bot.redelivery.github import redeliver_missed
from bot.redelivery.gitlab import recent_gitlab_projects, reconcile_open_mrs
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Periodic:
    """A job run every `interval` seconds on a daemon thread until `stop()`."""

    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float | None = 10.0) -> None:
        self.stop_event.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)


def start_periodic(
    job: Callable[[], object],
    interval: float,
    *,
    name: str = "changegate-periodic",
    initial_delay: float = 0.0,
    stop_event: threading.Event | None = None,
) -> Periodic:
    """Run `job` after `initial_delay`, then every `interval` seconds, until stopped. An
    exception is logged and the next round runs as planned."""
    stop = stop_event or threading.Event()

    def loop() -> None:
        if stop.wait(initial_delay):
            return
        while True:
            try:
                job()
            except Exception:  # noqa: BLE001 - the next round may well succeed
                log.exception("%s: round failed", name)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return Periodic(thread, stop)


@dataclass
class Jobs:
    """The periodic missed-delivery jobs of one process."""

    running: list[Periodic] = field(default_factory=list)

    def stop(self, timeout: float | None = 10.0) -> None:
        for job in self.running:
            job.stop_event.set()
        for job in self.running:
            job.stop(timeout)


def start_jobs(
    settings: Settings,
    forges: Mapping[str, Any],
    engine: Engine,
    *,
    interval: float | None = None,
    lookback: float | None = None,
    initial_delay: float = 5.0,
) -> Jobs:
    """Start the jobs the configured forges need, every `interval` seconds (default: the
    setting `redelivery_interval_seconds`; 0 turns them off). The first round looks back
    `lookback` seconds (`redelivery_lookback_seconds`: it covers a downtime), later rounds
    two intervals (at least an hour)."""
    if interval is None:
        interval = settings.redelivery_interval_seconds
    if lookback is None:
        lookback = settings.redelivery_lookback_seconds
    jobs = Jobs()
    if interval <= 0:
        return jobs
    windows = _Windows(first=lookback, then=max(2 * interval, 3600.0))
    github = forges.get("github")
    if github is not None and hasattr(github, "integration"):

        def github_round() -> None:
            report = redeliver_missed(github, engine, since=windows.since("github"))
            if report.requested or report.errors:
                log.info(
                    "redelivery round: %d failed, %d asked again, %d errors",
                    len(report.failed),
                    len(report.requested),
                    len(report.errors),
                )

        jobs.running.append(
            start_periodic(
                github_round, interval, name="github-redelivery", initial_delay=initial_delay
            )
        )
    gitlab = forges.get("gitlab")
    if gitlab is not None and hasattr(gitlab, "project_info"):

        def gitlab_round() -> None:
            projects = recent_gitlab_projects(engine, windows.since("gitlab"))
            reconcile_open_mrs(gitlab, engine, projects)

        jobs.running.append(
            start_periodic(
                gitlab_round, interval, name="gitlab-reconcile", initial_delay=initial_delay
            )
        )
    return jobs


@dataclass
class _Windows:
    first: float
    then: float
    _started: set[str] = field(default_factory=set)

    def since(self, job: str) -> dt.datetime:
        seconds = self.then if job in self._started else self.first
        self._started.add(job)
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
