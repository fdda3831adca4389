"""JSON log lines: one object per line, and every line about a delivery names it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit.testforge import UNPINNED, MemoryForge, payload
from sqlalchemy.engine import Engine

from bot import inbox
from bot.forges import Delivery
from bot.governor import PolicyHolder
from bot.governor.change import ChangeGovernor
from bot.metrics import JsonFormatter
from bot.worker import Handlers, WorkerConfig, WorkerPool


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_line_about_a_delivery_carries_its_id(
    engine: Engine, policy_file: Path, forge: MemoryForge, log_lines: io.StringIO
) -> None:
    deliveries = {
        "ok": payload(repo="acme/app", number=1, head="h1", files={"a.yaml": UNPINNED}),
        "bad": payload(repo="acme/app", number=2, head="h2", fail=99),
    }
    for name, body in deliveries.items():
        d = Delivery(id=name, forge="github", event="pull_request", body=body)
        inbox.store(engine, d, forge.subject_of(d))
    holder = PolicyHolder(policy_file, reload_seconds=0)
    changes = ChangeGovernor(engine, holder, {"github": forge}, public_url="https://cg.example")
    pool = WorkerPool(
        engine,
        {"github": forge},
        WorkerConfig(max_attempts=1, poll_interval=0.02),
        count=1,
        handlers=Handlers(actions={"evaluate": changes.action}),
    )
    for item in inbox.claim(engine, "w", limit=5, lease=60):
        pool.process(item, "w")
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    about = [r for r in records if r["logger"] in ("bot.worker", "bot.governor.change")]
    assert {r.get("delivery") for r in about} == {"github:ok", "github:bad"}
    dead = next(r for r in about if r["level"] == "error")
    assert dead["delivery"] == "github:bad" and dead["event"] == "pull_request"
    assert "dead after 1 attempts" in dead["msg"] and "injected failure" in dead["msg"]
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
