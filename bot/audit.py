"""The audit log: append-only, each row chained to the one before by SHA-256.

Every decision and verdict change is a row (who, what SHA, which rules, through which
channel, delivery id, time, decision). A row's `hash` covers its own content and the
previous row's hash, and `seq` is gapless, so `verify()` finds any row that was edited,
deleted or inserted out of turn. Deleting the newest rows leaves a shorter chain that is
still consistent: keep `head()` somewhere else (a ticket, a log shipper) to catch that too.

Appending takes a lock on the tail first (a transaction-scoped advisory lock on
PostgreSQL, the write lock on SQLite), so concurrent appenders queue instead of forking
the chain; the unique `seq` and `prev_hash` columns make a fork impossible to store anyway.
The row is written in the caller's transaction, so the audit entry commits or rolls back
together with the decision it records.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.approvals.models import AuditRecord
from bot.store import advisory_key, utcnow

GENESIS = "0" * 64

EXPORT_FIELDS = (
    "seq",
    "at",
    "action",
    "actor_system",
    "actor",
    "subject",
    "sha",
    "rules",
    "channel",
    "delivery_id",
    "decision",
    "detail",
    "prev_hash",
    "hash",
)


def _jsonable(value: Any) -> Any:
    """What a JSON column gives back: hash exactly what will be read later."""
    return json.loads(json.dumps(value, default=str))


def content_of(row: AuditRecord) -> dict[str, Any]:
    """The hashed content of a row: everything but its id and its own hash."""
    return {
        "seq": row.seq,
        "at": _naive(row.at).isoformat(timespec="microseconds"),
        "action": row.action,
        "actor_system": row.actor_system,
        "actor": row.actor,
        "subject": row.subject,
        "sha": row.sha,
        "rules": list(row.rules),
        "channel": row.channel,
        "delivery_id": row.delivery_id,
        "decision": row.decision,
        "detail": row.detail,
        "prev_hash": row.prev_hash,
    }


def row_hash(row: AuditRecord) -> str:
    canonical = json.dumps(content_of(row), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _lock_tail(session: Session) -> None:
    """Serialize appenders: nobody else may read the tail until we commit."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(advisory_key("audit"))))
    elif dialect == "sqlite":
        # A write statement takes SQLite's write lock (waiting out busy_timeout), even when
        # it matches no row; from here to commit no other connection can append.
        session.execute(sa.text("UPDATE audit_log SET seq = seq WHERE 1 = 0"))


@dataclass(frozen=True)
class Entry:
    """What one audit row records: `action` (e.g. "approval.decided") by `actor`, a
    (system, id) pair such as ("slack", "U0ALICE"), on `subject` at `sha`, under `rules`,
    through `channel`, for `delivery_id`; `at` defaults to now."""

    action: str
    actor: tuple[str, str] | None = None
    subject: str = ""
    sha: str = ""
    rules: Iterable[str] = ()
    channel: str = ""
    delivery_id: str | None = None
    decision: str = ""
    detail: dict[str, Any] | None = None
    at: dt.datetime | None = None


def append(session: Session, entry: Entry) -> AuditRecord:
    """Add one row at the end of the chain, in the caller's transaction (flushed, not
    committed)."""
    _lock_tail(session)
    tail = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    actor = entry.actor
    row = AuditRecord(
        seq=(tail.seq + 1) if tail else 1,
        at=_naive(entry.at or utcnow()),
        action=entry.action,
        actor_system=actor[0] if actor else "",
        actor=actor[1] if actor else "",
        subject=entry.subject,
        sha=entry.sha,
        rules=list(entry.rules),
        channel=entry.channel,
        delivery_id=entry.delivery_id or "",
        decision=entry.decision,
        detail=_jsonable(entry.detail or {}),
        prev_hash=tail.hash if tail else GENESIS,
        hash="",
    )
    row.hash = row_hash(row)
    session.add(row)
    session.flush()
    return row


def _rows(session: Session, since: dt.datetime | None = None) -> Iterator[AuditRecord]:
    query = select(AuditRecord).order_by(col(AuditRecord.seq))
    if since is not None:
        query = query.where(col(AuditRecord.at) >= _naive(since))
    yield from session.exec(query.execution_options(yield_per=500))


def head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the newest row, (0, GENESIS) when empty: an anchor to keep elsewhere."""
    tail = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    return (tail.seq, tail.hash) if tail else (0, GENESIS)


def verify(session: Session, *, anchor: tuple[int, str] | None = None) -> list[str]:
    """Every break in the chain, as sentences; empty when the log is intact.

    `anchor` is a (seq, hash) taken earlier from `head()`: that row must still be there,
    unchanged, which also catches deletion of the newest rows.
    """
    problems: list[str] = []
    prev_hash, expected_seq = GENESIS, 1
    anchor_seen = False
    for row in _rows(session):
        if row.seq != expected_seq:
            gap = (
                f"row {expected_seq} is missing"
                if row.seq == expected_seq + 1
                else f"rows {expected_seq}..{row.seq - 1} are missing"
            )
            problems.append(f"{gap} (deleted)")
        if row.prev_hash != prev_hash:
            problems.append(
                f"row {row.seq}: does not follow the row before it "
                "(a row before it was deleted, edited or inserted)"
            )
        if row_hash(row) != row.hash:
            problems.append(f"row {row.seq}: content does not match its hash (edited)")
        if anchor is not None and row.seq == anchor[0]:
            anchor_seen = True
            if row.hash != anchor[1]:
                problems.append(f"row {row.seq}: hash differs from the anchor kept earlier")
        prev_hash, expected_seq = row.hash, row.seq + 1
    if anchor is not None and anchor[0] > 0 and not anchor_seen:
        problems.append(f"row {anchor[0]} of the anchor kept earlier is gone (deleted)")
    return problems


def _export_dict(row: AuditRecord) -> dict[str, Any]:
    out = content_of(row)
    out["at"] = _naive(row.at).isoformat(timespec="seconds") + "Z"
    out["hash"] = row.hash
    return {name: out[name] for name in EXPORT_FIELDS}


def export(
    session: Session, since: dt.datetime | None = None, fmt: Literal["csv", "json"] = "json"
) -> str:
    """The evidence an auditor asks for: rows from `since` on, with their hashes."""
    rows = [_export_dict(r) for r in _rows(session, since)]
    if fmt == "json":
        return json.dumps(rows, indent=2, sort_keys=False) + "\n"
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}: csv or json")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row["rules"] = ";".join(row["rules"])
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
        writer.writerow(row)
    return buffer.getvalue()
