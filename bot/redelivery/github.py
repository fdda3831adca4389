"""GitHub: ask again for the deliveries whose latest attempt failed and that the inbox
does not hold (the App's delivery log, `GET /app/hook/deliveries`)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import inbox
from bot.redelivery.rounds import (
    MAX_ATTEMPTS,
    MAX_PAGES,
    PER_PAGE,
    REDELIVERIES,
    REDELIVERY_ERRORS,
    RedeliveryReport,
    aware,
    job_lock,
    reading,
)
from bot.store import deliveries as T

log = logging.getLogger(__name__)


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
    with job_lock(engine) as held:
        if not held:
            report.skipped = True
            return report
        requester = forge.integration().requester
        try:
            attempts = list(_list_attempts(requester, aware(since), max_pages))
        except Exception as exc:  # noqa: BLE001 - a round that cannot list retries next time
            REDELIVERY_ERRORS.labels("github").inc()
            report.errors.append(f"listing deliveries: {type(exc).__name__}: {exc}")
            log.warning("cannot list the App's webhook deliveries: %s", exc)
            return report
        report.listed = len(attempts)
        failed = _failed_by_guid(attempts)
        report.failed = sorted(failed)
        stored = _stored_ids(engine, "github", list(failed))
        for guid in report.failed:
            tries = failed[guid]
            if guid in stored:
                report.in_inbox.append(guid)
            elif len(tries) >= max_attempts:
                report.given_up.append(guid)
                log.warning(
                    "delivery %s (%s) failed %d times; not asking again",
                    guid,
                    tries[0].get("event"),
                    len(tries),
                )
            else:
                _ask_again(requester, guid, max(tries, key=_attempt_order), report)
    return report


def _failed_by_guid(attempts: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The attempts grouped by delivery guid, for the deliveries whose latest attempt failed."""
    by_guid: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempts:
        by_guid.setdefault(str(attempt["guid"]), []).append(attempt)
    return {
        guid: tries
        for guid, tries in by_guid.items()
        if not _ok(max(tries, key=_attempt_order).get("status_code"))
    }


def _ask_again(
    requester: Any, guid: str, latest: Mapping[str, Any], report: RedeliveryReport
) -> None:
    """Ask GitHub to redeliver `latest`, recording the request or the refusal in `report`:
    one refusal must not stop the round."""
    try:
        requester.requestJsonAndCheck("POST", f"/app/hook/deliveries/{int(latest['id'])}/attempts")
    except Exception as exc:  # noqa: BLE001 - one refusal must not stop the round
        REDELIVERY_ERRORS.labels("github").inc()
        report.errors.append(f"{guid}: {type(exc).__name__}: {exc}")
        log.warning("redelivery of %s refused: %s", guid, exc)
        return
    REDELIVERIES.labels("github").inc()
    report.requested.append(guid)
    log.info(
        "asked GitHub to redeliver %s (%s, last answered %s)",
        guid,
        latest.get("event"),
        latest.get("status_code"),
    )


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
        return aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)  # unknown: treat as recent


def _attempt_order(attempt: Mapping[str, Any]) -> tuple[dt.datetime, int]:
    return _when(attempt), int(attempt.get("id") or 0)


def _ok(status_code: Any) -> bool:
    return isinstance(status_code, int) and 200 <= status_code < 300


def _stored_ids(engine: Engine, forge: str, ids: Sequence[str]) -> set[str]:
    """Which of these forge delivery ids the inbox holds (any state)."""
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        keys = [inbox.key_of(forge, d) for d in ids[i : i + 500]]
        with reading(engine) as conn:
            found.update(conn.execute(sa.select(T.c.delivery_id).where(T.c.id.in_(keys))).scalars())
    return found
