"""The pages' reads (bot/pages/queries.py), straight against a seeded store: what each
query returns and in which order, apart from how a page shows it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.engine import Engine

from bot import inbox
from bot.governor import PolicyHolder
from bot.pages import queries

from .conftest import HEAD, OLD, REPO, SUBJECT, Seeded, dead_delivery


def test_subject_history_holds_everything_stored_about_one_change(
    engine: Engine, seeded: Seeded
) -> None:
    history = queries.subject_history(engine, SUBJECT)
    assert [e.token for e in history.evaluations] == ["tok-older-eval", seeded.token]
    assert [e.head_sha for e in history.evaluations] == [OLD, HEAD]
    seqs = [a.seq for a in history.audit]
    assert seqs == sorted(seqs) and len(seqs) == 5
    assert {r.sha for r in history.requests} == {OLD, HEAD}
    assert {(d.actor, d.decision) for d in history.decisions} == {("U0ALICE", "approve")}
    assert history.titles == ["Bump the shop to the newest nginx"] * 2


def test_a_subject_with_nothing_stored_has_an_empty_history(engine: Engine, seeded: Seeded) -> None:
    history = queries.subject_history(engine, "github:acme/other#1")
    assert history == queries.SubjectHistory([], [], [], [], [])


def test_totals_and_pending_requests(engine: Engine, seeded: Seeded) -> None:
    totals = queries.totals(engine)
    assert totals == queries.Totals(open_requests=1, evaluations=2, audit_rows=5, audit_problems=[])
    (pending,) = queries.pending_requests(engine)
    assert (pending.sha, pending.group_name, pending.state) == (HEAD, "senior", "pending")
    assert pending.approved == 0
    assert pending.token == seeded.token  # the subject's newest verdict


def test_recent_evaluations_filter_in_sql(engine: Engine, seeded: Seeded) -> None:
    rows, repos = queries.recent_evaluations(engine, repo="SHOP", decision="", limit=10)
    assert [r.token for r in rows] == [seeded.token, "tok-older-eval"]  # newest first
    assert repos == [REPO]
    rows, _ = queries.recent_evaluations(engine, repo="", decision="fail", limit=1)
    assert [r.token for r in rows] == [seeded.token]
    assert queries.recent_evaluations(engine, repo="_", decision="", limit=10)[0] == []
    assert queries.recent_evaluations(engine, repo="", decision="pass", limit=10)[0] == []


def test_dead_deliveries_and_the_audit_page(engine: Engine, seeded: Seeded) -> None:
    key = dead_delivery(engine, "dead-q", "RuntimeError: boom")
    (dead,) = queries.dead_deliveries(engine)
    assert (dead.id, dead.delivery_id, dead.last_error) == (key, "dead-q", "RuntimeError: boom")
    assert inbox.get(engine, key) is not None
    page = queries.audit_page(engine, subject="", limit=2)
    assert (page.rows, page.problems) == (5, [])
    assert [a.seq for a in page.entries] == [5, 4]  # newest first, limited
    assert queries.audit_page(engine, subject=SUBJECT, limit=100).entries[-1].seq == 1
    assert queries.audit_page(engine, subject="github:acme/other#1", limit=100).entries == []


class Broken:
    """A policy source whose policy cannot be loaded."""

    path = Path("/nowhere/policy.yml")
    error: str | None = "line 3: not a mapping"

    @property
    def policy(self) -> object:
        raise ValueError("not a mapping")


def test_the_loaded_policy_and_where_it_came_from(holder: PolicyHolder) -> None:
    assert queries.loaded_policy(holder) is holder.policy
    info = queries.policy_source_info(holder)
    assert info["source"] == str(holder.path) and info["reload_error"] is None
    assert info["file_modified_at"] is not None and info["file_modified_at"].endswith("Z")
    broken = Broken()
    assert queries.loaded_policy(broken) is None  # type: ignore[arg-type]
    assert queries.policy_source_info(broken) == {  # type: ignore[arg-type]
        "source": "/nowhere/policy.yml",
        "loaded_at": None,
        "file_modified_at": None,
        "reload_error": "line 3: not a mapping",
    }


def test_iso_is_utc_with_a_z() -> None:
    assert queries.iso(None) is None
    assert queries.iso(dt.datetime(2024, 6, 3, 9, 0, 5, 123)) == "2024-06-03T09:00:05Z"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert queries.iso(dt.datetime(2024, 6, 3, 11, 0, tzinfo=plus_two)) == "2024-06-03T09:00:00Z"
