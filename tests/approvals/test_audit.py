"""The audit chain: edits and deletions made straight in the database are found; export
gives auditors CSV and JSON; concurrent appenders never fork the chain."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import audit
from bot.approvals.models import audit_log

from .conftest import T0

SHA = "4444444444444444444444444444444444444444"


def fill(session: Session, count: int = 5) -> None:
    for i in range(count):
        audit.append(
            session,
            audit.Entry(
                action="approval.approve" if i % 2 else "approval.requested",
                actor=("slack", f"U0USER{i}"),
                subject="github:acme/app#12",
                sha=SHA,
                rules=["prod-only"],
                channel="slack",
                delivery_id=f"slack:{i}",
                decision="pending",
                detail={"request": "r1", "n": i},
                at=T0 + dt.timedelta(minutes=i),
            ),
        )
    session.commit()


def test_intact_chain_verifies(session: Session) -> None:
    fill(session)
    assert audit.verify(session) == []
    assert audit.head(session)[0] == 5


def test_an_edited_row_is_found(session: Session, engine: Engine) -> None:
    fill(session)
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 3).values(actor="U0MALLORY"))
    session.expire_all()
    assert audit.verify(session) == ["row 3: content does not match its hash (edited)"]


def test_an_edited_and_rehashed_row_breaks_the_next_link(session: Session, engine: Engine) -> None:
    fill(session)
    session.expire_all()
    from bot.approvals.models import AuditRecord

    row = session.exec(sa.select(AuditRecord).where(AuditRecord.seq == 2)).scalar_one()  # type: ignore[call-overload,arg-type]
    row.decision = "approved"
    forged = audit.row_hash(row)
    with engine.begin() as conn:
        conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.seq == 2)
            .values(decision="approved", hash=forged)
        )
    session.expire_all()
    problems = audit.verify(session)
    assert problems == [
        "row 3: does not follow the row before it (a row before it was deleted, edited or inserted)"
    ]


def test_a_deleted_row_is_found(session: Session, engine: Engine) -> None:
    fill(session)
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 3))
    session.expire_all()
    problems = audit.verify(session)
    assert "row 3 is missing (deleted)" in problems
    assert any(p.startswith("row 4: does not follow") for p in problems)


def test_deleting_the_first_rows_is_found(session: Session, engine: Engine) -> None:
    fill(session)
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq <= 2))
    session.expire_all()
    assert audit.verify(session)[0] == "rows 1..2 are missing (deleted)"


def test_deleting_the_newest_row_needs_an_anchor(session: Session, engine: Engine) -> None:
    fill(session)
    anchor = audit.head(session)
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 5))
    session.expire_all()
    assert audit.verify(session) == []  # a shorter chain is consistent on its own
    assert audit.verify(session, anchor=anchor) == [
        "row 5 of the anchor kept earlier is gone (deleted)"
    ]


def test_export_json_and_csv(session: Session) -> None:
    fill(session)
    since = T0 + dt.timedelta(minutes=3)
    rows = json.loads(audit.export(session, since, "json"))
    assert [r["seq"] for r in rows] == [4, 5]
    assert rows[0]["at"] == "2024-06-03T09:03:00Z"
    assert rows[0]["actor"] == "U0USER3" and rows[0]["rules"] == ["prod-only"]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    table = list(csv.DictReader(io.StringIO(audit.export(session, None, "csv"))))
    assert len(table) == 5
    assert table[2]["delivery_id"] == "slack:2" and table[2]["rules"] == "prod-only"
    assert json.loads(table[2]["detail"]) == {"n": 2, "request": "r1"}
    assert list(table[0]) == list(audit.EXPORT_FIELDS)


def test_concurrent_appenders_keep_one_chain(shared_engine: Engine) -> None:
    engine = shared_engine
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with Session(engine) as session:
                    audit.append(
                        session, audit.Entry(action="verdict", subject=f"w{n}", detail={"i": i})
                    )
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(engine) as session:
        assert audit.verify(session) == []
        assert audit.head(session)[0] == 40


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    details=st.lists(
        st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
            max_size=4,
        ),
        min_size=1,
        max_size=6,
    ),
    victim=st.integers(0, 5),
)
def test_any_single_field_edit_is_found(engine: Engine, details: list[dict], victim: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log))
    with Session(engine) as session:
        for i, detail in enumerate(details):
            audit.append(
                session,
                audit.Entry(
                    action="verdict", sha=SHA, detail=detail, at=T0 + dt.timedelta(seconds=i)
                ),
            )
        session.commit()
        assert audit.verify(session) == []
    seq = victim % len(details) + 1
    with engine.begin() as conn:
        conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.seq == seq)
            .values(detail={"x": "forged"}, sha="f" * 40)
        )
    with Session(engine) as session:
        assert f"row {seq}: content does not match its hash (edited)" in audit.verify(session)
