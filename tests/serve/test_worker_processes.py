"""`changegate serve` runs its workers as child processes: they process the deliveries the
web process stores, a crashed one is restarted, SIGTERM stops them all within the web pod's
30 s grace without losing a delivery, and none outlives a killed server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from e2e.conftest import APP_ID, GITHUB_SECRET, POLICY, REPO
from live import free_port, wait_for

from bot import inbox, store
from bot.worker_processes import CrashPolicy, WorkerProcesses

from standins.github import GitHubStandIn
from standins.gitrepo import GitRepo
from support import REPO_ROOT


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    url: str
    database_url: str

    def children(self) -> list[int]:
        return children_of(self.process.pid)


def children_of(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
def serve(tmp_path: Path, app_key: tuple[Path, str], github: GitHubStandIn) -> Iterator[Serve]:
    """`changegate serve` with its default two workers, against the GitHub stand-in."""
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'changegate.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "CHANGEGATE_DATABASE_URL": database_url,
            "CHANGEGATE_POLICY": str(policy),
            "CHANGEGATE_PUBLIC_URL": "https://changegate.example.com",
            "CHANGEGATE_GITHUB_APP_ID": str(APP_ID),
            "CHANGEGATE_GITHUB_PRIVATE_KEY_PATH": str(app_key[0]),
            "CHANGEGATE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
            "CHANGEGATE_GITHUB_API_URL": github.url,
            "CHANGEGATE_GITHUB_THROTTLE": "false",
            "CHANGEGATE_POLICY_RELOAD_SECONDS": "0",
            "CHANGEGATE_APPROVALS_TICK_SECONDS": "0",
            # idle workers poll rarely: a delivery is claimed at once only if the web
            # process wakes its worker children
            "CHANGEGATE_POLL_INTERVAL_SECONDS": "30",
        }
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    server = Serve(process, url, database_url)
    try:

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            return False

        wait_for(up, 60, "the server to start")
        wait_for(lambda: len(server.children()) == 2, 30, "two worker processes")
        yield server
    finally:
        left = server.children()
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _post_pulls(server: Serve, github: GitHubStandIn, repo: GitRepo, count: int) -> list[str]:
    """Open `count` pull requests and deliver their webhooks; the delivery ids acked."""
    acked = []
    with httpx.Client(timeout=10) as http:
        for _ in range(count):
            branch = f"change-{time.monotonic_ns()}"
            repo.commit(branch, {f"docs/{branch}.md": "hello\n"}, "a change")
            pull = github.open_pull(REPO, head=branch, author="bob")
            body, headers = github.webhook(
                "pull_request", github.pull_request_payload(REPO, pull.number), GITHUB_SECRET
            )
            answer = http.post(f"{server.url}/webhooks/github", content=body, headers=headers)
            assert answer.status_code == 202, answer.text
            acked.append(headers["X-GitHub-Delivery"])
    return acked


def _rows(database_url: str, ids: list[str]) -> dict[str, dict[str, object]]:
    engine = store.make_engine(database_url)
    try:
        keys = [inbox.key_of("github", i) for i in ids]
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    store.deliveries.c.id, store.deliveries.c.state, store.deliveries.c.leased_by
                ).where(store.deliveries.c.id.in_(keys))
            ).all()
        return {r.id: dict(r._mapping) for r in rows}
    finally:
        engine.dispose()


def test_worker_children_process_deliveries_survive_a_crash_and_stop_on_sigterm(
    serve: Serve, github: GitHubStandIn, repo: GitRepo
) -> None:
    first = _post_pulls(serve, github, repo, 2)
    wait_for(
        lambda: all(r["state"] == "done" for r in _rows(serve.database_url, first).values()),
        30,
        "the first deliveries to be processed",
    )
    children = serve.children()
    workers = {r["leased_by"] for r in _rows(serve.database_url, first).values()}
    # processed by the children, not in the web process
    assert all(str(w).split(":")[1] in {str(p) for p in children} for w in workers), workers

    os.kill(children[0], signal.SIGKILL)  # a crashed worker is restarted
    wait_for(
        lambda: len(serve.children()) == 2 and children[0] not in serve.children(),
        30,
        "the crashed worker process to be replaced",
    )
    assert serve.process.poll() is None

    # deliveries acked right before SIGTERM: none is lost
    last = _post_pulls(serve, github, repo, 4)
    children = serve.children()
    started = time.monotonic()
    serve.process.send_signal(signal.SIGTERM)
    serve.process.wait(30)
    wait_for(lambda: not any(alive(p) for p in children), 30 - (time.monotonic() - started))
    assert time.monotonic() - started < 30
    assert serve.process.returncode == 0
    rows = _rows(serve.database_url, first + last)
    assert len(rows) == len(first + last)  # every acked delivery is stored
    # finished, or back in the queue for the next start: never held by a dead worker
    assert {r["state"] for r in rows.values()} <= {"done", "queued"}, rows
    log = (Path(serve.database_url.removeprefix("sqlite:///")).parent / "serve.log").read_text()
    assert "exited with code -9: restarting it" in log


def test_no_worker_outlives_a_killed_server(serve: Serve) -> None:
    children = serve.children()
    serve.process.kill()
    serve.process.wait(10)
    wait_for(lambda: not any(alive(p) for p in children), 30, "the orphaned workers to exit")


def test_workers_that_keep_crashing_stop_the_server() -> None:
    """A crash loop is a broken installation: the supervisor gives up, loudly."""
    gave_up: list[bool] = []
    processes = WorkerProcesses(
        1,
        command=[sys.executable, "-c", "raise SystemExit(3)"],
        crashes=CrashPolicy(max_restarts=2, window=60),
        on_give_up=lambda: gave_up.append(True),
    )
    processes.start()
    try:
        wait_for(lambda: gave_up, 30, "the supervisor to give up")
    finally:
        processes.stop(grace=5)
    assert processes.gave_up
