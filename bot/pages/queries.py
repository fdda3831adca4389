"""What the pages read: the store (every SQL read of the pages is here) and the loaded
policy.

Reads run on a read-only connection: on SQLite a deferred BEGIN, so a page never takes the
write lock that workers and webhooks need. Timestamps leave here as naive UTC; `iso`
turns them into the strings a view carries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from bot import audit, inbox, store
from bot.approvals.models import approval_decisions, approval_requests, audit_log
from bot.policy.schema import Policy

log = logging.getLogger(__name__)

PENDING_LIMIT = 500
DEAD_LIMIT = 500
REPO_CHOICES = 200

#: Result rows (SQLAlchemy `Row`s), read by attribute: `row.subject`.
Rows = Sequence[Any]


class PolicySource(Protocol):
    """What the pages need of bot.governor.PolicyHolder: the policy and where it came from.

    `loaded_at` (naive UTC) is read with getattr: a holder without it shows the policy
    file's modification time instead."""

    path: Path
    error: str | None

    @property
    def policy(self) -> Policy: ...


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC (what the store holds) as ISO 8601 with a Z."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: on SQLite a deferred BEGIN, so a page never takes the
    write lock that workers and webhooks need."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        yield conn


# -- the loaded policy ------------------------------------------------------------------


def loaded_policy(source: PolicySource) -> Policy | None:
    """The policy, or None when it cannot be loaded (a page still shows what it can)."""
    try:
        return source.policy
    except Exception:  # noqa: BLE001 - a page still shows the verdict without it
        log.exception("policy unavailable to the pages")
        return None


def policy_source_info(source: PolicySource) -> dict[str, Any]:
    """Where the policy came from, when it was loaded, and the last reload error."""
    loaded_at = getattr(source, "loaded_at", None)
    modified: str | None = None
    with contextlib.suppress(OSError, TypeError):
        stamp = Path(source.path).stat().st_mtime
        modified = iso(dt.datetime.fromtimestamp(stamp, dt.UTC))
    return {
        "source": str(source.path),
        "loaded_at": iso(loaded_at) if isinstance(loaded_at, dt.datetime) else None,
        "file_modified_at": modified,
        "reload_error": source.error,
    }


# -- one change: what the verdict page shows --------------------------------------------


@dataclass(frozen=True)
class SubjectHistory:
    """Everything stored about one subject (a pull/merge request or a deploy)."""

    evaluations: Rows  # oldest first
    audit: Rows  # by sequence number
    requests: Rows  # approval requests
    decisions: Rows  # the decisions on those requests
    titles: Sequence[str | None]  # the requests' titles, newest first


def subject_history(engine: Engine, subject: str) -> SubjectHistory:
    """The evaluations, audit rows, approval requests and decisions of `subject`."""
    ev, r = store.evaluations, approval_requests
    with reading(engine) as conn:
        evaluations = conn.execute(
            sa.select(ev.c.token, ev.c.head_sha, ev.c.decision, ev.c.created_at, ev.c.id)
            .where(ev.c.subject == subject)
            .order_by(ev.c.created_at, ev.c.id)
        ).all()
        audited = conn.execute(
            sa.select(audit_log).where(audit_log.c.subject == subject).order_by(audit_log.c.seq)
        ).all()
        requests = conn.execute(sa.select(r).where(r.c.subject == subject)).all()
        decisions = (
            conn.execute(
                sa.select(approval_decisions).where(
                    approval_decisions.c.request_id.in_([x.id for x in requests])
                )
            ).all()
            if requests
            else []
        )
        titles = conn.execute(
            sa.select(r.c.title).where(r.c.subject == subject).order_by(r.c.created_at.desc())
        ).scalars()
        return SubjectHistory(evaluations, audited, requests, decisions, list(titles))


# -- the admin pages --------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The counts of the admin overview."""

    open_requests: int
    evaluations: int
    audit_rows: int
    audit_problems: list[str]


def totals(engine: Engine) -> Totals:
    """Open approval requests, stored evaluations, and the audit chain's length and state."""
    with reading(engine) as conn:
        open_count = conn.execute(
            sa.select(sa.func.count()).where(approval_requests.c.state == "pending")
        ).scalar_one()
        evaluated = conn.execute(
            sa.select(sa.func.count()).select_from(store.evaluations)
        ).scalar_one()
        with Session(bind=conn) as session:
            problems = audit.verify(session)
            seq, _ = audit.head(session)
    return Totals(int(open_count), int(evaluated), seq, problems)


def pending_requests(engine: Engine) -> Rows:
    """Open approval requests, newest first, each with its approvals so far (`approved`)
    and the token of its subject's newest verdict (`token`)."""
    r, d, ev = approval_requests, approval_decisions, store.evaluations
    approvals = (
        sa.select(sa.func.count())
        .where(d.c.request_id == r.c.id, d.c.decision == "approve")
        .scalar_subquery()
    )
    newest = (
        sa.select(ev.c.token)
        .where(ev.c.subject == r.c.subject)
        .order_by(ev.c.created_at.desc(), ev.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    with reading(engine) as conn:
        return conn.execute(
            sa.select(r, approvals.label("approved"), newest.label("token"))
            .where(r.c.state == "pending")
            .order_by(r.c.created_at.desc())
            .limit(PENDING_LIMIT)
        ).all()


def recent_evaluations(
    engine: Engine, *, repo: str, decision: str, limit: int
) -> tuple[Rows, list[str]]:
    """The newest evaluations (filtered by repository substring and decision), and the
    repositories to offer in the filter."""
    ev = store.evaluations
    query = sa.select(ev).order_by(ev.c.created_at.desc(), ev.c.id.desc())
    if repo:
        query = query.where(sa.func.lower(ev.c.repo).contains(repo.lower(), autoescape=True))
    if decision:
        query = query.where(ev.c.decision == decision)
    with reading(engine) as conn:
        rows = conn.execute(query.limit(limit)).all()
        repos = [
            x
            for (x,) in conn.execute(
                sa.select(ev.c.repo).distinct().order_by(ev.c.repo).limit(REPO_CHOICES)
            )
        ]
    return rows, repos


def dead_deliveries(engine: Engine) -> Rows:
    """The dead-letter queue, most recently dead first."""
    t = store.deliveries
    with reading(engine) as conn:
        return conn.execute(
            sa.select(
                t.c.id,
                t.c.forge,
                t.c.delivery_id,
                t.c.event,
                t.c.subject,
                t.c.attempts,
                t.c.last_error,
                t.c.received_at,
                t.c.processed_at,
            )
            .where(t.c.state == inbox.DEAD)
            .order_by(t.c.processed_at.desc(), t.c.received_at.desc())
            .limit(DEAD_LIMIT)
        ).all()


@dataclass(frozen=True)
class AuditPage:
    """The audit chain's state and its newest rows (of one subject, if asked)."""

    problems: list[str]
    rows: int
    head_hash: str
    entries: Rows


def audit_page(engine: Engine, *, subject: str, limit: int) -> AuditPage:
    with reading(engine) as conn:
        with Session(bind=conn) as session:
            problems = audit.verify(session)
            seq, head_hash = audit.head(session)
        query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        if subject:
            query = query.where(audit_log.c.subject == subject)
        rows = conn.execute(query).all()
    return AuditPage(problems, seq, head_hash, rows)
