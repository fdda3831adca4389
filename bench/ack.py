"""Ack path: `POST /webhooks/github` of changegate vs a minimal durable handler, one run.

    python bench/ack.py [--seconds 8] [--connections 16] [--rate 200] [--paced-seconds 15]

Both servers run under uvicorn on 127.0.0.1 in subprocesses of their own, on listening
sockets created with `IPPROTO_TCP` (asyncio sets TCP_NODELAY only on those; without it a
keep-alive request waits ~40 ms for a delayed ACK):

- changegate: `create_app(Settings())`, as `changegate serve` builds it, on a fresh SQLite
  file (WAL), GitHub configured (App id, key, secret) against a GitHub stand-in;
- the baseline: a bare Starlette endpoint that reads the body, checks the HMAC, inserts the
  raw body into a SQLite WAL table with one commit (`synchronous=FULL`, the durability
  changegate gives a stored delivery) and answers 202.

Phase 1, throughput: wrk (closed loop, fixed connections and duration) posts the same
25 KB signed `pull_request` payload with a unique `X-GitHub-Delivery` per request to
each server in turn (twice, alternating; the best run of each counts). changegate runs
without in-process workers here, so both measure the ack path alone.

Phase 2, latency under load: changegate with 2 in-process workers, which evaluate the
deliveries against the GitHub stand-in (50 ms per API call, PyGithub's spacing of calls
off so that the workers are never idle while deliveries wait); an open-loop client in its
own process sends `--rate` requests/s for `--paced-seconds` and reports p50/p99 measured
from each request's scheduled send time (no coordinated omission).

Targets: changegate >= 70% of the baseline's deliveries/s; p99 < 50 ms at 200/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SECRET = "bench-webhook-secret"
APP_ID = 4242
PAYLOAD_BYTES = 25 * 1024

WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
local n = 0
local body, sig, run
function init(args)
  run = args[1]
  local f = io.open(args[2], "rb"); body = f:read("*a"); f:close()
  sig = args[3]
end
function request()
  n = n + 1
  return wrk.format("POST", "/webhooks/github", {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "pull_request",
    ["X-GitHub-Delivery"] = run .. "-" .. tid .. "-" .. n,
    ["X-Hub-Signature-256"] = sig,
  }, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "bad_status": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


# -- shared helpers (bench/e2e.py and bench/memory.py import these) -------------------------
def nodelay_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket whose accepted connections get TCP_NODELAY from asyncio."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def app_key_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a new test App key: the tests' own helper."""
    from standins.github import app_key_pair as make

    return make()


def changegate_env(
    workdir: Path, database_url: str, api_url: str, key_path: Path, workers: int
) -> dict[str, str]:
    """The environment of a `changegate serve`/`worker` process: GitHub on, admin policy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    env.update(
        {
            "CHANGEGATE_DATABASE_URL": database_url,
            "CHANGEGATE_POLICY": str(ROOT / "policies" / "default.yml"),
            "CHANGEGATE_PUBLIC_URL": "http://127.0.0.1:8000",
            "CHANGEGATE_GITHUB_APP_ID": str(APP_ID),
            "CHANGEGATE_GITHUB_PRIVATE_KEY_PATH": str(key_path),
            "CHANGEGATE_GITHUB_WEBHOOK_SECRET": SECRET,
            "CHANGEGATE_GITHUB_API_URL": api_url,
            "CHANGEGATE_WORKER_COUNT": str(workers),
            "CHANGEGATE_POLL_INTERVAL_SECONDS": "0.2",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def start_server(
    kind: str, workdir: Path, env: dict[str, str], extra: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Run `python bench/ack.py _serve KIND` in `workdir`; returns the process and its port."""
    port_file = workdir / f"{kind}-{uuid.uuid4().hex[:6]}.port"
    log = open(workdir / f"{kind}.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "_serve", kind, str(port_file)]
        + (extra or []),
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} server did not start; see {workdir / (kind + '.log')}")
        time.sleep(0.05)
    port = int(port_file.read_text())
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc, port


def wait_http(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def machine_note() -> str:
    import importlib.util

    load = os.getloadavg()
    fast = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is not None]
    return (
        f"{os.cpu_count()} cores shared with other jobs (load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end of the run); uvicorn "
        + (f"with {' and '.join(fast)}" if fast else "on asyncio and h11 (no uvloop/httptools)")
    )


# -- the servers (child processes) -----------------------------------------------------------
def serve(kind: str, port_file: Path) -> None:
    import uvicorn

    sock = nodelay_socket()
    if kind == "changegate":
        from bot.app import create_app
        from bot.metrics import configure_logging
        from bot.settings import Settings

        configure_logging()  # JSON lines, as `changegate serve` logs (to the log file here)
        app: Any = create_app(Settings())
        lifespan = "on"
    else:
        app = minimal_app(Path("minimal.db"))
        lifespan = "off"
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan=lifespan)
    server = uvicorn.Server(config)
    port_file.write_text(str(sock.getsockname()[1]))
    server.run(sockets=[sock])


def minimal_app(db_path: Path) -> Any:
    """The floor: read, verify, one INSERT + COMMIT in WAL mode, 202. One connection, used
    from the event loop (SQLite has one writer anyway; no thread hops)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY, body BLOB NOT NULL)")
    key = SECRET.encode()

    async def hook(request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return Response(status_code=401)
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO inbox (id, body) VALUES (?, ?)",
            (request.headers.get("x-github-delivery", ""), body),
        )
        conn.execute("COMMIT")
        return Response(status_code=202)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/webhooks/github", hook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


# -- load -----------------------------------------------------------------------------------
def run_wrk(port: int, body_file: Path, signature: str, seconds: int, connections: int) -> dict:
    script = body_file.parent / "post.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            uuid.uuid4().hex[:8],
            str(body_file),
            signature,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("{"))
    result = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def group_commits(port: int) -> str:
    """changegate's own account of its group commits, from /metrics."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values = {
        name: float(value)
        for name, value in (ln.rsplit(" ", 1) for ln in text.splitlines() if ln[:1] != "#")
    }
    commits = values.get("changegate_inbox_store_batch_size_count", 0.0)
    if not commits:
        return "no commits"
    batch = values["changegate_inbox_store_batch_size_sum"] / commits
    seconds = values["changegate_inbox_store_seconds_sum"] / commits
    return f"{commits:.0f} commits, {batch:.1f} deliveries and {seconds * 1000:.2f} ms each"


def paced(url: str, bodies_file: Path, rate: float, seconds: float) -> dict:
    """Open loop: request i is due at t0 + i/rate whatever happened before, and its latency
    is measured from that due time. Plain asyncio streams over keep-alive connections (an
    HTTP client library costs more CPU per request than the servers measured here): a
    request goes out on an idle connection, or on a new one when all are busy."""
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 80
    bodies = [(base64.b64decode(b), s) for b, s in json.loads(bodies_file.read_text())]
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    opened = 0

    def request(i: int) -> bytes:
        body, signature = bodies[i % len(bodies)]
        head = (
            f"POST /webhooks/github HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\n"
            f"X-GitHub-Delivery: paced-{uuid.uuid4()}\r\nX-Hub-Signature-256: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def exchange(conn: tuple[Any, Any], data: bytes) -> int:
        reader, writer = conn
        writer.write(data)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(h.split(":", 1)[1]) for h in lines if h.lower().startswith("content-length:")),
            0,
        )
        await reader.readexactly(length)
        return int(lines[0].split()[1])

    async def main() -> None:
        nonlocal opened
        idle: list[tuple[Any, Any]] = []
        tasks = []

        async def one(i: int, due: float) -> None:
            nonlocal opened
            reused = bool(idle)
            if idle:
                conn = idle.pop()
            else:
                conn = await asyncio.open_connection(host, port)
                opened += 1
            try:
                code = await exchange(conn, request(i))
                idle.append(conn)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                code = 0
                # a keep-alive connection the server closed while it sat idle (uvicorn
                # closes them after 5 s) fails before any answer: like an HTTP client,
                # send again once on a new connection (still timed from the due time)
                stale = isinstance(exc, ConnectionResetError) or (
                    isinstance(exc, asyncio.IncompleteReadError) and not exc.partial
                )
                if reused and stale:
                    conn = await asyncio.open_connection(host, port)
                    opened += 1
                    try:
                        code = await exchange(conn, request(i))
                        idle.append(conn)
                    except (OSError, asyncio.IncompleteReadError, ValueError):
                        code = 0
            latencies.append(time.perf_counter() - due)
            statuses[code] = statuses.get(code, 0) + 1

        for _ in range(8):  # a few warm keep-alive connections, as a forge keeps
            idle.append(await asyncio.open_connection(host, port))
            opened += 1
        t0 = time.perf_counter() + 0.1
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        for _, writer in idle:
            writer.close()

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": total,
        "achieved_rps": total / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[int(len(ordered) * 0.99) - 1],
        "max_ms": 1000 * ordered[-1],
        "mean_ms": 1000 * statistics.fmean(ordered),
        "connections": opened,
        "statuses": statuses,
    }


# -- the run --------------------------------------------------------------------------------
def pull_payloads(standin: Any, repo: str, numbers: list[int]) -> list[bytes]:
    """Real `pull_request` payloads from the stand-in, padded to 25 KB (GitHub's are about
    that size: the repository object appears three times)."""
    out = []
    for n in numbers:
        payload = standin.pull_request_payload(repo, n, "synchronize")
        raw = json.dumps(payload).encode()
        payload["pull_request"]["body"] = "x" * max(0, PAYLOAD_BYTES - len(raw) - 2)
        body = json.dumps(payload).encode()
        assert abs(len(body) - PAYLOAD_BYTES) < 64, len(body)
        out.append(body)
    return out


def make_standin(workdir: Path, public_key: str, latency: float, pulls: int) -> tuple[Any, str]:
    """A GitHub stand-in (in this process) with one repository and `pulls` open PRs, each
    adding a Kubernetes manifest with an unpinned image."""
    from standins.github import GitHubStandIn
    from standins.gitrepo import GitRepo

    standin = GitHubStandIn(APP_ID, public_key, latency=latency).start()
    git = GitRepo(workdir / "app.git")
    git.commit("main", {"README.md": "# app\n"}, "initial commit")
    repo = "acme/app"
    standin.add_repo(repo, git, installation_id=1)
    for i in range(pulls):
        manifest = (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
            "  template:\n    spec:\n      containers:\n        - name: web\n"
            f"          image: registry.example.com/web:{'latest' if i % 2 else '1.4.' + str(i)}\n"
        )
        git.commit(f"feature-{i}", {f"deploy/staging/web-{i}.yaml": manifest}, f"change {i}")
        standin.open_pull(repo, f"feature-{i}", title=f"Change {i}")
    return standin, repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--paced-workers", type=int, default=2, help="in-process workers")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-ack-"))
    private, public = app_key_pair()
    key_path = workdir / "app.pem"
    key_path.write_text(private)
    standin, repo = make_standin(workdir, public, latency=0.05, pulls=20)
    bodies = pull_payloads(standin, repo, list(range(1, 21)))
    body_file = workdir / "body.json"
    body_file.write_bytes(bodies[0])
    signature = sign(bodies[0])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # phase 1: throughput, ack path alone
        results: dict[str, list[dict]] = {"minimal": [], "changegate": []}
        for round_ in range(2):
            for kind in ("minimal", "changegate"):
                env = changegate_env(
                    workdir,
                    f"sqlite:///{workdir / f'tput-{round_}.db'}",
                    standin.url,
                    key_path,
                    workers=0,
                )
                proc, port = start_server(kind, workdir, env)
                procs.append(proc)
                results[kind].append(
                    run_wrk(port, body_file, signature, args.seconds, args.connections)
                )
                commits = group_commits(port) if kind == "changegate" else ""
                stop(proc)
                r = results[kind][-1]
                print(
                    f"  {kind:10s} round {round_ + 1}: {r['rps']:7.1f} deliveries/s, "
                    f"p50 {r['p50_us'] / 1000:.1f} ms, p99 {r['p99_us'] / 1000:.1f} ms, "
                    f"errors {r['socket_errors']} socket / {r['bad_status']} status"
                    + (f"; {commits}" if commits else ""),
                    flush=True,
                )
        best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}

        # phase 2: a steady rate; changegate's in-process workers evaluate the deliveries
        bodies_file = workdir / "bodies.json"
        bodies_file.write_text(
            json.dumps([[base64.b64encode(b).decode(), sign(b)] for b in bodies])
        )
        steady: dict[str, dict] = {}
        for kind in ("minimal", "changegate"):
            env = changegate_env(
                workdir,
                f"sqlite:///{workdir / f'paced-{kind}.db'}",
                standin.url,
                key_path,
                workers=args.paced_workers,
            )
            # no client-side spacing of API calls: the workers go as fast as the stand-in
            env["CHANGEGATE_GITHUB_THROTTLE"] = "false"
            proc, port = start_server(kind, workdir, env)
            procs.append(proc)
            calls_before = len(standin.requests)
            runs_before = sum(1 for r in standin.check_runs.values() if r.status == "completed")
            out = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "_paced",
                    f"http://127.0.0.1:{port}",
                    str(bodies_file),
                    str(args.rate),
                    str(args.paced_seconds),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            steady[kind] = json.loads(out.stdout.strip().splitlines()[-1])
            steady[kind]["api_calls"] = len(standin.requests) - calls_before
            steady[kind]["runs"] = (
                sum(1 for r in standin.check_runs.values() if r.status == "completed") - runs_before
            )
            stop(proc)
    finally:
        for p in procs:
            stop(p)
        standin.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    ratio = best["changegate"]["rps"] / best["minimal"]["rps"]
    print()
    print(f"ack path, 25 KB signed pull_request, wrk -t2 -c{args.connections} -d{args.seconds}s")
    for kind in ("minimal", "changegate"):
        r = best[kind]
        print(
            f"  {kind:10s} {r['rps']:7.1f} deliveries/s   p50 {r['p50_us'] / 1000:6.1f} ms"
            f"   p99 {r['p99_us'] / 1000:6.1f} ms"
        )
    print(f"  throughput ratio changegate/minimal: {ratio:.0%}  (target >= 70%)")
    print(
        f"steady {args.rate:.0f}/s for {args.paced_seconds:.0f} s (open loop, latency from the "
        f"scheduled send time); changegate with {args.paced_workers} in-process workers "
        f"evaluating against the stand-in (50 ms per API call, no client-side spacing)"
    )
    for kind in ("minimal", "changegate"):
        r = steady[kind]
        print(
            f"  {kind:10s} achieved {r['achieved_rps']:6.1f}/s   p50 {r['p50_ms']:7.1f} ms"
            f"   p99 {r['p99_ms']:7.1f} ms   max {r['max_ms']:7.1f} ms   "
            f"connections {r['connections']}   answers {r['statuses']}"
            + (
                f"   (workers: {r['api_calls']} API calls, {r['runs']} check runs completed)"
                if kind == "changegate"
                else ""
            )
        )
    print("  target: changegate p99 < 50 ms")
    print(f"machine: {machine_note()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], Path(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_paced":
        print(
            json.dumps(
                paced(sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
            )
        )
    else:
        sys.exit(main())
