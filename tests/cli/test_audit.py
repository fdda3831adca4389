"""`changegate audit verify|export` on a real database: an edited row makes verify fail."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from bot import audit
from bot.cli import main
from bot.store import make_engine, upgrade


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    monkeypatch.setenv("CHANGEGATE_DATABASE_URL", url)
    engine = make_engine(url)
    with Session(engine) as session:
        for i, who in enumerate(["U0ALICE", "U0CAROL", "U0ALICE"]):
            audit.append(
                session,
                audit.Entry(
                    action="approval.decided",
                    actor=("slack", who),
                    subject="github:acme/app#12",
                    sha=f"{i:040d}",
                    rules=["prod-only"],
                    channel="slack",
                    delivery_id=f"d{i}",
                    decision="approved",
                ),
            )
        session.commit()
    engine.dispose()
    return url


def test_verify_passes_on_an_intact_log(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify"]) == 0
    assert "intact: 3 rows" in capsys.readouterr().out


def test_verify_fails_when_a_row_is_edited(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET decision = 'rejected' WHERE seq = 2"))
    engine.dispose()
    assert main(["audit", "verify"]) == 1
    assert "row 2: content does not match its hash" in capsys.readouterr().err


def test_verify_fails_when_a_row_is_deleted(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))
    engine.dispose()
    assert main(["audit", "verify"]) == 1
    assert "row 2 is missing" in capsys.readouterr().err


def test_export_json_and_csv(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "export", "--since", "1d", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["seq"], r["actor_system"], r["decision"]) for r in rows] == [
        (1, "slack", "approved"),
        (2, "slack", "approved"),
        (3, "slack", "approved"),
    ]
    assert all(r["subject"] == "github:acme/app#12" and len(r["hash"]) == 64 for r in rows)
    assert main(["audit", "export", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 3 and table[0]["rules"] == "prod-only"
    assert main(["audit", "export", "--since", "2999-01-01"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_since_is_a_usage_error(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "export", "--since", "last tuesday"]) == 2
