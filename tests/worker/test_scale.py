"""Several processes on one PostgreSQL: 2 servers and 4 worker processes drain 5,000
deliveries, each processed exactly once, while one worker is killed with kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa
from serverkit.testforge import UNPINNED, gh_headers, payload

from bot import store

REPO = Path(__file__).resolve().parents[2]
TOTAL = 5_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def test_two_servers_and_four_worker_processes_drain_5000_deliveries_exactly_once(
    pg_schema_url: str, policy_file: Path, tmp_path: Path
) -> None:
    engine = store.make_engine(pg_schema_url)
    store.load_models().create_all(engine)
    with engine.begin() as conn:  # what `changegate db upgrade` records
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute(
            sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": store.head_revision()}
        )
    markers = tmp_path / "markers"
    markers.mkdir()
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        procs.append(proc)
        return proc

    try:
        for port in ports:
            spawn("tests/serverkit/server_process.py", pg_schema_url, str(policy_file), str(port))
        workers = [
            # a 15 s lease: long enough that a busy 2-core machine never lets one expire
            # under a live worker, short enough for the killed worker's delivery to return
            spawn(
                "tests/serverkit/worker_process.py",
                pg_schema_url,
                str(policy_file),
                str(markers),
                "1",
                "15",
            )
            for _ in range(4)
        ]
        # six Python processes start at once: on a loaded 2-core machine that takes a while
        deadline = time.monotonic() + 90
        for port in ports:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "servers did not start"
                time.sleep(0.1)

        local = threading.local()

        def post(i: int) -> int:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=30)
            body = payload(
                repo="acme/app",
                number=i,
                head=f"h{i}",
                files={"k8s.yaml": UNPINNED if i % 2 else "a: 1\n"},
            )
            url = f"http://127.0.0.1:{ports[i % 2]}/webhooks/github"
            return client.post(
                url, content=body, headers=gh_headers(body, delivery=f"d{i}")
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(post, range(TOTAL))
            killed = False
            deadline = time.monotonic() + 240
            while not killed:  # kill -9 one worker once the drain is well under way
                if count(engine, "SELECT count(*) FROM deliveries WHERE state = 'done'") >= 1_000:
                    os.kill(workers[0].pid, signal.SIGKILL)
                    killed = True
                assert time.monotonic() < deadline, "the workers made no progress"
                time.sleep(0.05)
            statuses = list(answers)
        assert statuses.count(202) == TOTAL, {s: statuses.count(s) for s in set(statuses)}

        while count(engine, "SELECT count(*) FROM deliveries WHERE state = 'done'") < TOTAL:
            assert time.monotonic() < deadline, count(
                engine, "SELECT count(*) FROM deliveries WHERE state <> 'done'"
            )
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert workers[0].returncode == -signal.SIGKILL
    evaluated = count(engine, "SELECT count(DISTINCT subject) FROM evaluations")
    twice = count(
        engine,
        "SELECT count(*) FROM (SELECT subject FROM evaluations "
        "GROUP BY subject HAVING count(*) > 1) AS t",
    )
    attempts = count(engine, "SELECT sum(attempts) FROM deliveries")
    engine.dispose()
    assert evaluated == TOTAL
    # At-least-once across a crash: only what the killed worker had in hand runs again.
    assert twice <= 1 and attempts <= TOTAL + 1
