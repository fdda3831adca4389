"""Published verdicts (the details pages read them) and the newest head and base seen per
subject (a stale delivery never overwrites a newer verdict)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.change import Change, Verdict
from bot.store.tables import base_changes, evaluations, subject_heads, utcnow


def new_token() -> str:
    return secrets.token_urlsafe(24)


def claim_head(engine: Engine, subject: str, head_sha: str, received_at: dt.datetime) -> bool:
    """Record `head_sha` as the subject's newest head unless a later delivery saw another.

    Returns False when the delivery is stale: a delivery received after this one already
    recorded a different head. Deliveries of one subject are never processed at the same
    time (the inbox sees to it), so read-then-write here needs no further locking.
    """
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(subject_heads.c.head_sha, subject_heads.c.received_at).where(
                subject_heads.c.subject == subject
            )
        ).first()
        if row is None:
            conn.execute(
                sa.insert(subject_heads).values(
                    subject=subject, head_sha=head_sha, received_at=received_at, updated_at=now
                )
            )
            return True
        if row.head_sha != head_sha and row.received_at > received_at:
            return False
        conn.execute(
            sa.update(subject_heads)
            .where(subject_heads.c.subject == subject)
            .values(
                head_sha=head_sha, received_at=max(received_at, row.received_at), updated_at=now
            )
        )
        return True


def record_basis(engine: Engine, subject: str, head_sha: str, basis: str) -> dt.datetime | None:
    """Record that `head_sha` is shown against `basis` now. Returns when it started to be,
    if the head was shown against another basis before (approvals given earlier were given
    on another diff), else None. Deliveries of one subject never run at the same time."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(base_changes.c.basis, base_changes.c.seen_at)
            .where(base_changes.c.subject == subject, base_changes.c.head_sha == head_sha)
            .order_by(base_changes.c.id.desc())
            .limit(2)
        ).all()
        if rows and rows[0].basis == basis:
            return rows[0].seen_at if len(rows) > 1 else None
        now = utcnow()
        conn.execute(
            sa.insert(base_changes).values(
                subject=subject, head_sha=head_sha, basis=basis, seen_at=now
            )
        )
        return now if rows else None


@dataclass(frozen=True)
class PublishedVerdict:
    """A verdict as published: `token` names its details page; where it was judged
    (`forge`, `subject`, `repo`, `number`) and for which delivery; the change, when
    known (its title, author and basis); the note of an override."""

    token: str
    forge: str
    subject: str
    repo: str
    number: int | None
    verdict: Verdict
    delivery_id: str | None
    change: Change | None = None
    note: str | None = None


def save_evaluation(engine: Engine, published: PublishedVerdict) -> None:
    """Store a published verdict with what the details page explains: who counted toward
    each approval, which approvals did not count and why, the change's title and author,
    and the note of an override (a Slack rejection or a break-glass)."""
    verdict, change, note = published.verdict, published.change, published.note
    data = json.loads(json.dumps(verdict.as_dict()))
    for entry, status in zip(data["approvals"], verdict.approvals, strict=True):
        entry["approvers"] = list(status.approvers)
        entry["ignored"] = [{"who": who, "why": why} for who, why in status.ignored]
    if change is not None:
        data["change"] = {"title": change.title, "author": change.author, "url": change.url}
        if change.basis is not None:  # the base the verdict judged: approvals bind to it
            data["change"]["basis"] = change.basis
    if note:
        data["note"] = note
    with engine.begin() as conn:
        conn.execute(
            sa.insert(evaluations).values(
                token=published.token,
                forge=published.forge,
                subject=published.subject,
                repo=published.repo,
                number=published.number,
                base_sha=verdict.base,
                head_sha=verdict.head or "",
                decision=str(verdict.decision),
                verdict=data,
                delivery_id=published.delivery_id,
                created_at=utcnow(),
            )
        )


def evaluation_by_token(engine: Engine, token: str) -> dict[str, Any] | None:
    """The evaluation behind a details page URL, or None."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        row = conn.execute(sa.select(evaluations).where(evaluations.c.token == token)).first()
    return dict(row._mapping) if row is not None else None
