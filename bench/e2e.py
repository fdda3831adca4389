"""End to end on PostgreSQL: webhook -> inbox -> worker processes -> posted check run.

    python bench/e2e.py [--deliveries 100] [--workers 1,2,4] [--latency 0.05]
                        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--throttle]

For each worker count: a fresh PostgreSQL schema (migrated with alembic, dropped after),
one server process (`create_app(Settings())` as `changegate serve` builds it, without
in-process workers) and N worker processes (`run_workers`, one worker each, as
`changegate worker`), all pointed at a GitHub stand-in (in this process) that answers
every API call after `--latency` seconds, as GitHub does (~50 ms). Each delivery is a
signed `pull_request` webhook for its own pull request (one changed Kubernetes manifest),
posted through `POST /webhooks/github`; the clock runs from the first post until the
stand-in holds a completed `changegate` check run for every one of them.

`--throttle` keeps production's spacing of writes (1 s apart, per installation client),
which `GitHubForge.from_settings` turns on; without it
the workers' forge is built with `throttle=False` so that the API latency, not the
client-side spacing, is what is measured (see bench/README.md).

Target: 4 workers >= 3x one worker's deliveries/s.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ack import (  # noqa: E402
    APP_ID,
    SECRET,
    app_key_pair,
    changegate_env,
    machine_note,
    make_standin,
    sign,
    start_server,
    stop,
)

from bot import store  # noqa: E402


def worker(throttle: bool) -> None:
    """One `changegate worker` process; its GitHub forge optionally without throttling."""
    from bot.forges.github import GitHubForge, GitHubOptions
    from bot.settings import Settings
    from bot.worker import WorkerOptions, run_workers

    settings = Settings()
    assert settings.github_private_key_path is not None
    forge = GitHubForge(
        APP_ID,
        settings.github_private_key_path.read_text(),
        settings.github_api_url,
        GitHubOptions(throttle=throttle),
    )
    run_workers(settings, WorkerOptions(forges={"github": forge}))


def fresh_schema(base_url: str) -> tuple[str, str]:
    schema = f"cg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(store.normalize_url(base_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = f"{base_url}?options={quote(f'-csearch_path={schema}')}"
    store.upgrade(url)
    return schema, url


def drop_schema(base_url: str, schema: str) -> None:
    admin = sa.create_engine(store.normalize_url(base_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)
    return time.perf_counter()


def run_config(
    n_workers: int,
    *,
    standin: Any,
    repo: str,
    numbers: list[int],
    workdir: Path,
    key_path: Path,
    base_url: str,
    throttle: bool,
) -> dict[str, Any]:
    schema, url = fresh_schema(base_url)
    env = changegate_env(workdir, url, standin.url, key_path, workers=0)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server, port = start_server("changegate", workdir, env)
        procs.append(server)
        worker_env = {**env, "CHANGEGATE_WORKER_COUNT": "1"}
        logs = []
        for i in range(n_workers):
            log_path = workdir / f"worker-{n_workers}-{i}.log"
            logs.append(log_path)
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "_worker"]
                    + (["--throttle"] if throttle else []),
                    cwd=workdir,
                    env=worker_env,
                    stdout=log_path.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        wait_for(
            lambda: all("workers started" in p.read_text(errors="replace") for p in logs),
            60,
            "workers did not start",
        )
        first_run = max(standin.check_runs, default=0)

        def completed() -> set[str]:
            return {
                r.head_sha
                for r in list(standin.check_runs.values())
                if r.id > first_run and r.status == "completed"
            }

        bodies, heads = [], set()
        for n in numbers:
            payload = standin.pull_request_payload(repo, n, "synchronize")
            heads.add(payload["pull_request"]["head"]["sha"])
            bodies.append(standin.webhook("pull_request", payload, SECRET)[0])
        statuses: dict[int, int] = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            started = time.perf_counter()
            for body in bodies:
                r = http.post(
                    "/webhooks/github",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "pull_request",
                        "X-GitHub-Delivery": str(uuid.uuid4()),
                        "X-Hub-Signature-256": sign(body),
                    },
                )
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            posted = time.perf_counter()
        finished = wait_for(lambda: completed() >= heads, 600, "check runs missing")
        runs = [r for r in standin.check_runs.values() if r.id > first_run]
        engine = store.make_engine(url)
        with engine.connect() as conn:
            states = dict(
                conn.execute(
                    sa.select(store.deliveries.c.state, sa.func.count()).group_by(
                        store.deliveries.c.state
                    )
                ).all()
            )
        engine.dispose()
    finally:
        for p in procs[1:]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            stop(p)
        drop_schema(base_url, schema)
    elapsed = finished - started
    return {
        "workers": n_workers,
        "deliveries": len(numbers),
        "seconds": elapsed,
        "rate": len(numbers) / elapsed,
        "post_seconds": posted - started,
        "statuses": statuses,
        "runs": len(runs),
        "conclusions": sorted({str(r.conclusion) for r in runs}),
        "states": states,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--throttle", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-e2e-"))
    private, public = app_key_pair()
    key_path = workdir / "app.pem"
    key_path.write_text(private)
    print(f"setting up {args.deliveries} pull requests on the stand-in...", flush=True)
    standin, repo = make_standin(workdir, public, latency=args.latency, pulls=args.deliveries)
    numbers = list(range(1, args.deliveries + 1))
    results = []
    try:
        for k in counts:
            calls = len(standin.requests)
            result = run_config(
                k,
                standin=standin,
                repo=repo,
                numbers=numbers,
                workdir=workdir,
                key_path=key_path,
                base_url=args.database_url,
                throttle=args.throttle,
            )
            result["api_calls"] = len(standin.requests) - calls
            results.append(result)
            print(
                f"  {k} worker process{'es' if k > 1 else ''}: {result['rate']:6.2f} deliveries/s"
                f"  ({result['deliveries']} in {result['seconds']:.1f} s; posting took "
                f"{result['post_seconds']:.1f} s; {result['api_calls'] / result['deliveries']:.1f}"
                f" API calls each; inbox {result['states']}; runs {result['runs']} "
                f"{result['conclusions']}; webhook answers {result['statuses']})",
                flush=True,
            )
    finally:
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    base = results[0]["rate"]
    print()
    print(
        f"end to end on PostgreSQL, stand-in latency {args.latency * 1000:.0f} ms per call, "
        f"throttle {'on' if args.throttle else 'off'}"
    )
    for r in results:
        print(
            f"  {r['workers']} workers: {r['rate']:6.2f} deliveries/s  "
            f"x{r['rate'] / base:.2f} of {results[0]['workers']} worker"
        )
    print(f"machine: {machine_note()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker("--throttle" in sys.argv[2:])
    else:
        sys.exit(main())
