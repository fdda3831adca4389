"""Missed deliveries: GitHub does not redeliver a failed webhook, and GitLab gives up too.

While the server is down, unreachable or answering 5xx, GitHub logs each failed attempt
and moves on. A periodic job reads the App's delivery log (`GET /app/hook/deliveries`, App
JWT), and for every delivery whose latest attempt failed and whose guid is not in the
inbox, asks GitHub to deliver it again (`POST /app/hook/deliveries/{id}/attempts`): the
redelivery comes through the normal webhook path, signed, and is stored like any other.
The guid is the `X-GitHub-Delivery` the inbox is keyed by, so a redelivery of something
already stored is a harmless duplicate.

GitLab has no such log in its API. Instead, open merge requests whose head commit carries
no `changegate` status are re-checked by storing a synthetic merge request delivery in the
inbox, with a delivery id derived from the head, so repeated reconciliations of the same
head store it once.

`start_periodic` runs such a job on a daemon thread; `start_jobs(settings, forges, engine)`
starts the right ones for the configured forges (the app lifespan calls it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.engine import Engine

from bot import inbox, metrics, store
from bot.forges import Delivery
from bot.settings import Settings
from bot.store import deliveries as T
from bot.store import is_postgres

log = logging.getLogger(__name__)

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


# -- GitHub ----------------------------------------------------------------------------------
def redeliver_missed(
    forge: Any,
    engine: Engine,
    *,
    since: dt.datetime,
    max_attempts: int = MAX_ATTEMPTS,
    max_pages: int = MAX_PAGES,
) -> RedeliveryReport:
    """Ask GitHub to redeliver every delivery since `since` whose latest attempt failed
    and that the inbox does not hold. `forge` is a `GitHubForge` (its App-level client)."""
    report = RedeliveryReport()
    with _job_lock(engine) as held:
        if not held:
            report.skipped = True
            return report
        requester = forge.integration().requester
        try:
            attempts = list(_list_attempts(requester, _aware(since), max_pages))
        except Exception as exc:  # noqa: BLE001 - a round that cannot list retries next time
            REDELIVERY_ERRORS.labels("github").inc()
            report.errors.append(f"listing deliveries: {type(exc).__name__}: {exc}")
            log.warning("cannot list the App's webhook deliveries: %s", exc)
            return report
        report.listed = len(attempts)
        by_guid: dict[str, list[dict[str, Any]]] = {}
        for attempt in attempts:
            by_guid.setdefault(str(attempt["guid"]), []).append(attempt)
        failed = {
            guid: tries
            for guid, tries in by_guid.items()
            if not _ok(max(tries, key=_attempt_order).get("status_code"))
        }
        report.failed = sorted(failed)
        stored = _stored_ids(engine, "github", list(failed))
        for guid in report.failed:
            tries = failed[guid]
            if guid in stored:
                report.in_inbox.append(guid)
                continue
            if len(tries) >= max_attempts:
                report.given_up.append(guid)
                log.warning(
                    "delivery %s (%s) failed %d times; not asking again",
                    guid,
                    tries[0].get("event"),
                    len(tries),
                )
                continue
            latest = max(tries, key=_attempt_order)
            try:
                requester.requestJsonAndCheck(
                    "POST", f"/app/hook/deliveries/{int(latest['id'])}/attempts"
                )
            except Exception as exc:  # noqa: BLE001 - one refusal must not stop the round
                REDELIVERY_ERRORS.labels("github").inc()
                report.errors.append(f"{guid}: {type(exc).__name__}: {exc}")
                log.warning("redelivery of %s refused: %s", guid, exc)
                continue
            REDELIVERIES.labels("github").inc()
            report.requested.append(guid)
            log.info(
                "asked GitHub to redeliver %s (%s, last answered %s)",
                guid,
                latest.get("event"),
                latest.get("status_code"),
            )
    return report


def _list_attempts(requester: Any, since: dt.datetime, max_pages: int) -> Iterator[dict[str, Any]]:
    """Delivery attempts newer than `since`, newest first, following the `Link` cursor.
    Only the cursor is taken from the link: every request is built on the API URL."""
    cursor: str | None = None
    for _ in range(max_pages):
        params: dict[str, Any] = {"per_page": PER_PAGE}
        if cursor:
            params["cursor"] = cursor
        headers, page = requester.requestJsonAndCheck(
            "GET", "/app/hook/deliveries", parameters=params
        )
        for attempt in page or []:
            if _when(attempt) < since:
                return  # listed newest first: the rest is older still
            yield attempt
        cursor = _next_cursor(headers.get("link", ""))
        if not cursor or not page:
            return
    log.warning("delivery log longer than %d pages: older deliveries not checked", max_pages)


_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def _next_cursor(link: str) -> str | None:
    match = _NEXT.search(link or "")
    if match is None:
        return None
    values = parse_qs(urlsplit(match.group(1)).query).get("cursor")
    return values[0] if values else None


def _when(attempt: Mapping[str, Any]) -> dt.datetime:
    text = str(attempt.get("delivered_at") or "")
    try:
        return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)  # unknown: treat as recent


def _attempt_order(attempt: Mapping[str, Any]) -> tuple[dt.datetime, int]:
    return _when(attempt), int(attempt.get("id") or 0)


def _ok(status_code: Any) -> bool:
    return isinstance(status_code, int) and 200 <= status_code < 300


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _stored_ids(engine: Engine, forge: str, ids: Sequence[str]) -> set[str]:
    """Which of these forge delivery ids the inbox holds (any state)."""
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        keys = [inbox.key_of(forge, d) for d in ids[i : i + 500]]
        with _reading(engine) as conn:
            found.update(conn.execute(sa.select(T.c.delivery_id).where(T.c.id.in_(keys))).scalars())
    return found


# -- GitLab ----------------------------------------------------------------------------------
def reconcile_open_mrs(forge: Any, engine: Engine, projects: Iterable[str]) -> RedeliveryReport:
    """Queue a re-check of every open merge request of `projects` whose head commit has no
    `changegate` status and none of whose deliveries is waiting in the inbox. `forge` is a
    `GitLabForge`; projects are full paths (or ids)."""
    from bot.forges.gitlab import STATUS_NAME

    report = RedeliveryReport()
    with _job_lock(engine) as held:
        if not held:
            report.skipped = True
            return report
        for path in projects:
            try:
                info = forge.project_info(path)
                project = forge.project(info.id)
                missing = []
                for mr in project.mergerequests.list(state="opened", iterator=True):
                    report.listed += 1
                    statuses = project.commits.get(mr.sha, lazy=True).statuses.list(
                        name=STATUS_NAME, get_all=True
                    )
                    if not any(s.name == STATUS_NAME for s in statuses):
                        missing.append(mr)
            except Exception as exc:  # noqa: BLE001 - one project must not stop the round
                REDELIVERY_ERRORS.labels("gitlab").inc()
                report.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                log.warning("cannot reconcile GitLab project %s: %s", path, exc)
                continue
            subjects = {f"gitlab:{info.path}!{mr.iid}": mr for mr in missing}
            busy = _waiting_subjects(engine, list(subjects))
            for subject, mr in subjects.items():
                name = f"{info.path}!{mr.iid}"
                report.failed.append(name)
                if subject in busy:
                    report.in_inbox.append(name)
                    continue
                delivery = synthetic_mr_delivery(info.id, info.path, info.default_branch, mr)
                if inbox.store(engine, delivery, subject):
                    REDELIVERIES.labels("gitlab").inc()
                    report.requested.append(name)
                    log.info("%s@%s has no changegate status: re-check queued", name, mr.sha[:12])
                else:
                    report.in_inbox.append(name)  # queued for this head before
    return report


def synthetic_mr_delivery(
    project_id: int, path: str, default_branch: str | None, mr: Any
) -> Delivery:
    """A minimal `Merge Request Hook` that the GitLab forge evaluates like a webhook (it
    asks the API for the merge request as it is now, so the payload carries ids only)."""
    payload = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "changegate_reconcile": True,
        "project": {
            "id": project_id,
            "path_with_namespace": path,
            "default_branch": default_branch,
        },
        "object_attributes": {
            "iid": int(mr.iid),
            "action": "update",
            "state": "opened",
            "target_project_id": project_id,
            "last_commit": {"id": mr.sha},
        },
    }
    return Delivery(
        id=f"reconcile:{project_id}!{int(mr.iid)}@{mr.sha}",
        forge="gitlab",
        event=SYNTHETIC_EVENT,
        body=json.dumps(payload).encode(),
        headers={"x-gitlab-event": SYNTHETIC_EVENT, "user-agent": "changegate-reconcile"},
    )


def recent_gitlab_projects(engine: Engine, since: dt.datetime) -> list[str]:
    """Project paths the inbox heard of since `since` (from delivery subjects): the
    projects whose webhooks reach this server, hence the ones worth reconciling."""
    since = _aware(since).astimezone(dt.UTC).replace(tzinfo=None)  # columns hold naive UTC
    with _reading(engine) as conn:
        subjects = conn.execute(
            sa.select(T.c.subject)
            .where(T.c.forge == "gitlab", T.c.subject != "", T.c.received_at >= since)
            .distinct()
        ).scalars()
        paths = {m.group(1) for s in subjects if (m := _GITLAB_SUBJECT.match(s))}
    return sorted(paths)


_GITLAB_SUBJECT = re.compile(r"^gitlab:(.+?)(?:!\d+|@.*|/pipelines/\d+)?$")


def _waiting_subjects(engine: Engine, subjects: Sequence[str]) -> set[str]:
    if not subjects:
        return set()
    with _reading(engine) as conn:
        return set(
            conn.execute(
                sa.select(T.c.subject).where(
                    T.c.subject.in_(list(subjects)),
                    T.c.state.in_([inbox.QUEUED, inbox.PROCESSING]),
                )
            ).scalars()
        )


def _reading(engine: Engine) -> Any:
    """A read-only connection (on SQLite, one that does not take the write lock)."""
    return engine.connect().execution_options(sqlite_deferred=True)


# -- running them ----------------------------------------------------------------------------
@contextlib.contextmanager
def _job_lock(engine: Engine) -> Iterator[bool]:
    """True when this process may run a round: always on SQLite (one host), on PostgreSQL
    when no other replica holds the job's advisory lock."""
    if not is_postgres(engine):
        yield True
        return
    with engine.connect() as conn:
        held = bool(
            conn.execute(
                sa.select(sa.func.pg_try_advisory_lock(store.advisory_key("redelivery")))
            ).scalar()
        )
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(
                    sa.select(sa.func.pg_advisory_unlock(store.advisory_key("redelivery")))
                )
                conn.commit()


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
