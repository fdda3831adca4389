"""Workers on SQLite and PostgreSQL: exactly-once draining, retries, dead letters, stale
heads, graceful stop, and a worker process killed with SIGKILL mid-delivery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from serverkit.testforge import PINNED, UNPINNED, MemoryForge, payload
from sqlalchemy.engine import Engine

from bot import inbox, metrics, store
from bot.forges import Delivery, Work
from bot.governor import PolicyHolder
from bot.governor.change import ChangeGovernor
from bot.worker import Handlers, WorkerConfig, WorkerPool

REPO = Path(__file__).resolve().parents[2]


def put(engine: Engine, forge: MemoryForge, n: int | str, **fields: object) -> str:
    d = Delivery(id=f"d-{n}", forge="github", event="pull_request", body=payload(**fields))
    assert inbox.store(engine, d, forge.subject_of(d))
    return inbox.key_of("github", d.id)


@pytest.fixture
def pool_factory(
    engine: Engine, policy_file: Path, forge: MemoryForge
) -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(count: int = 2, **config: object) -> WorkerPool:
        values: dict[str, object] = {
            "lease": 10.0,
            "max_attempts": 3,
            "backoff": inbox.Backoff(0.01, 0.05),
            "poll_interval": 0.02,
        }
        values.update(config)
        holder = PolicyHolder(policy_file, reload_seconds=0)
        changes = ChangeGovernor(
            engine, holder, {"github": forge}, public_url="https://cg.example.com/"
        )
        pool = WorkerPool(
            engine,
            {"github": forge},
            WorkerConfig(**values),  # type: ignore[arg-type]
            count=count,
            handlers=Handlers(actions={"evaluate": changes.action}),
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop(timeout=10)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def finished(engine: Engine) -> int:
    s = inbox.stats(engine).by_state
    return s["done"] + s["ignored"] + s["dead"]


def test_four_workers_drain_1000_deliveries_exactly_once(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    rows = [
        {
            "id": f"github:d-{n}",
            "forge": "github",
            "delivery_id": f"d-{n}",
            "event": "pull_request",
            "headers": {},
            "body": payload(subject=f"github:acme/app#{n % 40}", ignore="drained"),
            "subject": f"github:acme/app#{n % 40}",
            "state": "queued",
            "attempts": 0,
            "available_at": store.utcnow(),
            "received_at": store.utcnow(),
        }
        for n in range(1000)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(store.deliveries), rows)
    pool = pool_factory(count=4)
    pool.start()
    wait_until(lambda: finished(engine) == 1000, timeout=120)
    assert set(forge.parsed) == {f"d-{n}" for n in range(1000)}
    assert set(forge.parsed.values()) == {1}  # each processed exactly once
    assert forge.overlaps == []  # never two of one pull request at once
    assert inbox.stats(engine).by_state["ignored"] == 1000
    with engine.connect() as conn:
        workers = conn.execute(
            sa.select(sa.func.count(sa.distinct(store.deliveries.c.leased_by)))
        ).scalar()
    assert workers == 4  # the work was shared


def test_evaluation_is_published_and_stored_with_an_unguessable_details_url(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    key = put(
        engine, forge, 1, repo="acme/app", number=7, head="h1", files={"k8s/web.yaml": UNPINNED}
    )
    pool = pool_factory()
    pool.start()
    wait_until(lambda: finished(engine) == 1)
    assert inbox.get(engine, key)["state"] == "done"  # type: ignore[index]
    [pub] = forge.published
    assert str(pub.verdict.decision) == "fail"
    [finding] = pub.verdict.findings
    assert (finding.rule, finding.path, finding.line) == ("pinned-images", "k8s/web.yaml", 8)
    assert pub.details_url.startswith("https://cg.example.com/v/")
    token = pub.details_url.rsplit("/", 1)[1]
    assert len(token) >= 32
    assert forge.started == [("h1", pub.details_url)]
    saved = store.evaluation_by_token(engine, token)
    assert saved is not None
    assert (saved["subject"], saved["head_sha"], saved["decision"]) == (
        "github:acme/app#7",
        "h1",
        "fail",
    )
    assert saved["verdict"]["findings"][0]["subject"] == "nginx:latest"


def test_repository_policy_may_tighten_the_admin_policy(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    forge.repo_policy = (
        "version: 1\nrules:\n  - id: versions\n    kind: yaml-version-coercion\n    action: block\n"
    )
    put(
        engine,
        forge,
        1,
        repo="acme/app",
        number=8,
        head="h1",
        files={"values.yaml": "imageTag: 1.20\n"},
    )
    pool_factory().start()
    wait_until(lambda: finished(engine) == 1)
    [pub] = forge.published
    assert [f.rule for f in pub.verdict.findings] == ["versions"]


def test_failures_are_retried_then_succeed(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    key = put(
        engine, forge, 1, repo="acme/app", number=1, head="h1", files={"a.yaml": PINNED}, fail=2
    )
    failed_before = metrics.FAILED.labels("github", "pull_request")._value.get()
    pool_factory().start()
    wait_until(lambda: finished(engine) == 1)
    row = inbox.get(engine, key)
    assert row is not None and (row["state"], row["attempts"]) == ("done", 3)
    assert forge.parsed["d-1"] == 3
    assert str(forge.published[0].verdict.decision) == "pass"
    assert metrics.FAILED.labels("github", "pull_request")._value.get() == failed_before + 2


def test_a_delivery_that_always_fails_is_dead_lettered_and_requeueable(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    key = put(engine, forge, 1, repo="acme/app", number=1, head="h1", fail=99)
    dead_before = metrics.DEAD.labels("github", "pull_request")._value.get()
    pool = pool_factory()
    pool.start()
    wait_until(lambda: finished(engine) == 1)
    row = inbox.get(engine, key)
    assert row is not None and (row["state"], row["attempts"]) == ("dead", 3)
    assert "RuntimeError: injected failure 3" in row["last_error"]
    assert metrics.DEAD.labels("github", "pull_request")._value.get() == dead_before + 1
    assert forge.published == []
    assert inbox.requeue_dead(engine, "d-1") == 1
    wait_until(lambda: forge.parsed["d-1"] == 6 and finished(engine) == 1)


def test_unknown_forge_is_an_error_not_a_silent_drop(
    engine: Engine, pool_factory: Callable[..., WorkerPool]
) -> None:
    inbox.store(engine, Delivery(id="g1", forge="gitlab", event="Push Hook", body=b"{}"))
    pool_factory().start()
    wait_until(lambda: finished(engine) == 1)
    row = inbox.get(engine, "gitlab:g1")
    assert row is not None and row["state"] == "dead"
    assert "forge 'gitlab' is not configured" in row["last_error"]


def test_unhandled_events_are_marked_ignored_with_the_reason(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    key = put(engine, forge, 1, ignore="event star is not handled")
    pool_factory().start()
    wait_until(lambda: finished(engine) == 1)
    row = inbox.get(engine, key)
    assert row is not None and (row["state"], row["last_error"]) == (
        "ignored",
        "event star is not handled",
    )


def test_a_stale_delivery_never_overwrites_a_newer_verdict(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    old = put(
        engine, forge, "old", repo="acme/app", number=3, head="h-old", files={"a.yaml": UNPINNED}
    )
    new = put(
        engine, forge, "new", repo="acme/app", number=3, head="h-new", files={"a.yaml": PINNED}
    )
    with engine.begin() as conn:  # the old one failed once and waits for its retry
        conn.execute(
            sa.update(store.deliveries)
            .where(store.deliveries.c.id == old)
            .values(available_at=store.utcnow() + __import__("datetime").timedelta(seconds=0.5))
        )
    pool_factory(count=2).start()
    wait_until(lambda: finished(engine) == 2)
    assert [p.change.head for p in forge.published] == ["h-new"]
    old_row, new_row = inbox.get(engine, old), inbox.get(engine, new)
    assert old_row is not None and new_row is not None
    assert (old_row["state"], new_row["state"]) == ("ignored", "done")
    assert "superseded" in old_row["last_error"]


def test_deliveries_of_one_pull_request_are_processed_one_at_a_time(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    for n in range(6):
        put(engine, forge, n, subject="github:acme/app#1", ignore="x", sleep=0.05)
    for n in range(6, 12):
        put(engine, forge, n, subject=f"github:acme/app#{n}", ignore="x", sleep=0.05)
    pool_factory(count=4).start()
    wait_until(lambda: finished(engine) == 12)
    assert forge.overlaps == []
    assert set(forge.parsed.values()) == {1}


def test_graceful_stop_finishes_in_flight_work(
    engine: Engine, forge: MemoryForge, pool_factory: Callable[..., WorkerPool]
) -> None:
    key = put(engine, forge, 1, ignore="slow", sleep=0.6)
    pool = pool_factory(count=1, lease=0.3)  # heartbeat renews the short lease meanwhile
    pool.start()
    wait_until(lambda: forge.parsed["d-1"] == 1)
    put(engine, forge, 2, ignore="later")
    pool.stop(timeout=10)
    assert inbox.get(engine, key)["state"] == "ignored"  # type: ignore[index]
    assert inbox.get(engine, "github:d-2")["state"] == "queued"  # type: ignore[index]
    assert forge.parsed["d-1"] == 1  # the lease never expired under it


def test_worker_process_killed_mid_delivery_loses_nothing(
    engine: Engine,
    db_url: str,
    policy_file: Path,
    tmp_path: Path,
    forge: MemoryForge,
    pool_factory: Callable[..., WorkerPool],
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    key = put(
        engine,
        forge,
        "victim",
        repo="acme/app",
        number=5,
        head="h1",
        files={"a.yaml": UNPINNED},
        sleep=30,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests/serverkit/worker_process.py"),
            db_url,
            str(policy_file),
            str(markers),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: (markers / "d-victim.started").exists() or proc.poll() is not None, 20)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        row = inbox.get(engine, key)
        assert row is not None and row["state"] == "processing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    # The survivor finishes it once the dead worker's 1 s lease has expired.
    with engine.begin() as conn:  # this time the forge answers at once
        conn.execute(
            sa.update(store.deliveries)
            .where(store.deliveries.c.id == key)
            .values(body=payload(repo="acme/app", number=5, head="h1", files={"a.yaml": UNPINNED}))
        )
    pool_factory(count=1).start()
    wait_until(lambda: finished(engine) == 1, timeout=10)
    row = inbox.get(engine, key)
    assert row is not None and (row["state"], row["attempts"]) == ("done", 2)
    assert [str(p.verdict.decision) for p in forge.published] == ["fail"]


def test_sigterm_stops_a_worker_process_gracefully(
    engine: Engine, db_url: str, policy_file: Path, tmp_path: Path, forge: MemoryForge
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    key = put(engine, forge, "slow", ignore="slow", sleep=1.0)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests/serverkit/worker_process.py"),
            db_url,
            str(policy_file),
            str(markers),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: (markers / "d-slow.started").exists() or proc.poll() is not None, 20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    row = inbox.get(engine, key)
    assert row is not None and row["state"] == "ignored"  # finished, not abandoned


def test_other_sources_and_actions_plug_into_the_workers(
    engine: Engine, policy_file: Path, forge: MemoryForge
) -> None:
    seen: list[str] = []

    def slack_click(item: inbox.Claimed) -> tuple[str, str | None]:
        seen.append(f"slack:{item.delivery.event}")
        return "done", None

    def gate(work: Work, f: object, item: inbox.Claimed) -> tuple[str, str | None]:
        seen.append(f"gate:{item.delivery.id}")
        return "ignored", "gate answered"

    inbox.store(engine, Delivery(id="t1", forge="slack", event="block_actions", body=b"payload=x"))
    put(engine, forge, "g", work="deployment-gate")
    put(engine, forge, "other", ignore="x")
    pool = WorkerPool(
        engine,
        {"github": forge},
        WorkerConfig(poll_interval=0.02),
        count=1,
        handlers=Handlers(sources={"slack": slack_click}, actions={"deployment-gate": gate}),
    )
    for item in inbox.claim(engine, "w", limit=5, lease=60):
        pool.process(item, "w")
    assert sorted(seen) == ["gate:d-g", "slack:block_actions"]
    assert inbox.get(engine, "slack:t1")["state"] == "done"  # type: ignore[index]
    assert inbox.get(engine, "github:d-g")["last_error"] == "gate answered"  # type: ignore[index]
