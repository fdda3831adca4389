"""Ack path: `POST /webhooks/github` of `changegate serve` vs a minimal durable handler
and Probot, one run.

    python bench/ack.py [--seconds 8] [--connections 16] [--rate 200] [--paced-seconds 15]

Every server runs in a subprocess of its own on 127.0.0.1:

- minimal: a bare Starlette endpoint under uvicorn that reads the body, checks the HMAC,
  inserts the raw body into a SQLite WAL table with one commit (`synchronous=FULL`, the
  durability changegate gives a stored delivery) and answers 202 (on a socket created with
  `IPPROTO_TCP`: asyncio sets TCP_NODELAY only on those, as uvicorn's own sockets are);
- serve, web only: `changegate serve` with `CHANGEGATE_WORKER_COUNT=0`, on a fresh SQLite
  file, GitHub configured (App id, key, secret) against a GitHub stand-in;
- serve, default: the same with its default two workers, which run as child processes
  and evaluate every delivery against the stand-in (50 ms per API call) while the load
  runs: they are busy throughout (the table shows their CPU time and what they finished);
- Probot: npm `probot` (installed once into `.cache/`, outside git) running a minimal app,
  one empty `pull_request` handler: its ack path with nothing stored.

Phase 1, throughput: wrk (closed loop, fixed connections and duration) posts 25 KB signed
`pull_request` payloads of 20 pull requests in turn, a unique `X-GitHub-Delivery` per
request, to each server in turn (twice, alternating; the best run of each counts).

Phase 2, latency under load: an open-loop client in its own process sends `--rate`
requests/s for `--paced-seconds` to the minimal handler and to the default `serve`, whose
worker processes evaluate the deliveries, and reports p50/p99 measured from each request's
scheduled send time (no coordinated omission).

Targets: the default `serve`, workers busy, acks >= 70% of the minimal handler's
deliveries/s; p99 < 50 ms at 200/s.
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
from dataclasses import dataclass
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
local bodies, sigs = {}, {}
local run, path
function init(args)
  run, path = args[1], args[4]
  for i = 1, tonumber(args[3]) do
    local f = io.open(args[2] .. "/body-" .. i, "rb"); bodies[i] = f:read("*a"); f:close()
    f = io.open(args[2] .. "/sig-" .. i, "rb"); sigs[i] = f:read("*a"); f:close()
  end
end
function request()
  n = n + 1
  local i = n % #bodies + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "pull_request",
    ["X-GitHub-Delivery"] = run .. "-" .. tid .. "-" .. n,
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
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


PROBOT_VERSION = "14.3.2"
PROBOT_DIR = ROOT / ".cache" / f"probot-{PROBOT_VERSION}"
PROBOT_APP = """// bench/ack.py's minimal Probot app: verify the signature, run an empty handler, ack.
export default (app) => {
  app.on("pull_request", async () => {});
};
"""


def free_port() -> int:
    sock = nodelay_socket()
    port = int(sock.getsockname()[1])
    sock.close()  # the server binds it itself
    return port


def start_cli_serve(workdir: Path, env: dict[str, str], name: str) -> Server:
    """The real `changegate serve --port P` (python -m bot.cli), as a user runs it."""
    port = free_port()
    log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
    workers = int(env.get("CHANGEGATE_WORKER_COUNT", "2"))
    deadline = time.monotonic() + 60
    # the worker processes are up too (each logs this once it claims)
    while (workdir / f"{name}.log").read_text().count('"worker process up') < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: worker processes did not start")
        time.sleep(0.1)
    return Server(name, proc, port, "/webhooks/github")


def probot_installed() -> Path | None:
    """npm `probot` in `.cache/` (gitignored), installed the first time; None without npm."""
    binary = PROBOT_DIR / "node_modules" / ".bin" / "probot"
    if not binary.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            return None
        PROBOT_DIR.mkdir(parents=True, exist_ok=True)
        (PROBOT_DIR / "package.json").write_text('{"name": "probot-bench", "private": true}')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"probot@{PROBOT_VERSION}"],
            cwd=PROBOT_DIR,
            check=True,
            capture_output=True,
        )
    (PROBOT_DIR / "app.mjs").write_text(PROBOT_APP)
    return binary


def start_probot(workdir: Path, binary: Path, key_path: Path) -> Server:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")},
        "APP_ID": str(APP_ID),
        "PRIVATE_KEY_PATH": str(key_path),
        "WEBHOOK_SECRET": SECRET,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEBHOOK_PATH": "/webhooks/github",
        "LOG_LEVEL": "warn",  # no log line per request
        "NODE_ENV": "production",
    }
    log = open(workdir / "probot.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [str(binary), "run", "./app.mjs"],
        cwd=PROBOT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/probot", timeout=60)
    return Server("probot", proc, port, "/webhooks/github")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    path: str

    def cpu_seconds(self) -> tuple[float, float]:
        """(this process, its children) user + system CPU seconds so far."""
        return _cpu(self.proc.pid), sum(_cpu(p) for p in children_of(self.proc.pid))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- load -----------------------------------------------------------------------------------
def run_wrk(port: int, bodies_dir: Path, seconds: int, connections: int, path: str) -> dict:
    """wrk against `path`, posting the bodies written by `write_bodies` in turn."""
    script = bodies_dir / "post.lua"
    script.write_text(WRK_SCRIPT)
    count = len(list(bodies_dir.glob("body-*")))
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
            str(bodies_dir),
            str(count),
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("{"))
    result = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def write_bodies(directory: Path, bodies: list[bytes]) -> Path:
    """body-N and sig-N files, as the wrk script reads them."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, body in enumerate(bodies, 1):
        (directory / f"body-{i}").write_bytes(body)
        (directory / f"sig-{i}").write_text(sign(body))
    return directory


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


@dataclass
class Setup:
    workdir: Path
    standin: Any
    key_path: Path
    probot: Path | None

    def env(self, name: str, workers: int) -> dict[str, str]:
        env = changegate_env(
            self.workdir,
            f"sqlite:///{self.workdir / (name + '.db')}",
            self.standin.url,
            self.key_path,
            workers,
        )
        # no client-side spacing of API calls: the workers go as fast as the stand-in
        env["CHANGEGATE_GITHUB_THROTTLE"] = "false"
        env["CHANGEGATE_REDELIVERY_INTERVAL_SECONDS"] = "0"
        return env

    def start(self, kind: str, run: str) -> Server:
        if kind == "minimal":
            proc, port = start_server("minimal", self.workdir, self.env(run, 0))
            return Server("minimal", proc, port, "/webhooks/github")
        if kind == "probot":
            assert self.probot is not None
            return start_probot(self.workdir, self.probot, self.key_path)
        if kind == "threads":  # the app as serve ran it before: workers in its threads
            proc, port = start_server("changegate", self.workdir, self.env(f"threads-{run}", 2))
            return Server("threads", proc, port, "/webhooks/github")
        workers = 0 if kind == "web-only" else 2
        name = f"{kind}-{run}"
        return start_cli_serve(self.workdir, self.env(name, workers), name)


LABELS = {
    "minimal": "minimal durable handler (fsync per commit)",
    "web-only": "changegate serve, CHANGEGATE_WORKER_COUNT=0",
    "default": "changegate serve, default (2 worker processes)",
    "threads": "before: 2 worker threads in the web process",
    "probot": f"Probot {PROBOT_VERSION}, minimal app (nothing stored)",
}


def throughput(setup: Setup, args: argparse.Namespace, bodies_dir: Path) -> dict[str, dict]:
    """Phase 1: each server in turn, twice; the best run of each."""
    kinds = ["minimal", "web-only", "default", "threads"] + (["probot"] if setup.probot else [])
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    for round_ in range(2):
        for kind in kinds:
            server = setup.start(kind, f"tput-{round_}")
            try:
                own, children = server.cpu_seconds()
                r = run_wrk(server.port, bodies_dir, args.seconds, args.connections, server.path)
                own_after, children_after = server.cpu_seconds()
                r["cpu"] = (own_after - own, children_after - children)
                if kind != "minimal" and kind != "probot":
                    r["commits"] = group_commits(server.port)
                if kind in ("default", "threads"):
                    r["processed"] = processed(setup.workdir / f"{kind}-tput-{round_}.db")
            finally:
                stop(server.proc, timeout=40)
            results[kind].append(r)
            print(f"  round {round_ + 1}: {kind:8s} {describe(r)}", flush=True)
    return {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}


def describe(r: dict) -> str:
    line = (
        f"{r['rps']:7.1f} deliveries/s, p50 {r['p50_us'] / 1000:5.1f} ms, "
        f"p99 {r['p99_us'] / 1000:6.1f} ms, errors {r['socket_errors']} socket / "
        f"{r['bad_status']} status; CPU {r['cpu'][0]:.1f} s"
    )
    if r["cpu"][1]:
        line += f" (+{r['cpu'][1]:.1f} s in worker processes)"
    if "processed" in r:
        line += f"; workers finished {r['processed']} deliveries"
    return line + (f"; {r['commits']}" if "commits" in r else "")


def processed(db: Path) -> int:
    """Deliveries the workers finished (done or ignored) in a serve's SQLite inbox."""
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM deliveries WHERE state IN ('done', 'ignored')"
            ).fetchone()[0]
        )


def steady(setup: Setup, args: argparse.Namespace, bodies_file: Path) -> dict[str, dict]:
    """Phase 2: an open-loop client at `--rate`; the default serve's workers evaluate."""
    out: dict[str, dict] = {}
    for kind in ("minimal", "default"):
        server = setup.start(kind, "paced")
        calls_before = len(setup.standin.requests)
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "_paced",
                    f"http://127.0.0.1:{server.port}",
                    str(bodies_file),
                    str(args.rate),
                    str(args.paced_seconds),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            stop(server.proc, timeout=40)
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        out[kind]["api_calls"] = len(setup.standin.requests) - calls_before
    return out


def report(best: dict[str, dict], paced_: dict[str, dict], args: argparse.Namespace) -> None:
    print()
    print(
        f"ack path, 25 KB signed pull_request (20 pull requests in turn), "
        f"wrk -t2 -c{args.connections} -d{args.seconds}s, best of 2"
    )
    for kind, r in best.items():
        print(
            f"  {LABELS[kind]:48s} {r['rps']:7.1f} deliveries/s   p50 {r['p50_us'] / 1000:6.1f} ms"
            f"   p99 {r['p99_us'] / 1000:6.1f} ms"
        )
        if kind in ("default", "threads"):
            where = "in the worker processes" if kind == "default" else "server, all threads"
            cpu = r["cpu"][1] if kind == "default" else r["cpu"][0]
            print(
                f"  {'':48s} (workers busy meanwhile: {r['processed']} deliveries evaluated; "
                f"{cpu:.1f} CPU-s {where})"
            )
    ratio = best["default"]["rps"] / best["minimal"]["rps"]
    before = best["threads"]["rps"] / best["minimal"]["rps"]
    print(
        f"  default serve (workers busy) / minimal durable handler: {ratio:.0%}  (target >= 70%;"
        f" with the workers as threads, as before: {before:.0%})"
    )
    print(
        f"steady {args.rate:.0f}/s for {args.paced_seconds:.0f} s (open loop, latency from the "
        f"scheduled send time); the default serve's 2 worker processes evaluate against the "
        f"stand-in (50 ms per API call, no client-side spacing)"
    )
    for kind, r in paced_.items():
        print(
            f"  {kind:10s} achieved {r['achieved_rps']:6.1f}/s   p50 {r['p50_ms']:7.1f} ms"
            f"   p99 {r['p99_ms']:7.1f} ms   max {r['max_ms']:7.1f} ms   "
            f"answers {r['statuses']}"
            + (f"   (workers: {r['api_calls']} API calls)" if kind == "default" else "")
        )
    print("  target: the default serve's p99 < 50 ms")
    print(f"machine: {machine_note()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-ack-"))
    private, public = app_key_pair()
    key_path = workdir / "app.pem"
    key_path.write_text(private)
    probot = probot_installed()
    if probot is None:
        print("npm/node not found: Probot is left out", file=sys.stderr)
    standin, repo = make_standin(workdir, public, latency=0.05, pulls=20)
    try:
        setup = Setup(workdir, standin, key_path, probot)
        bodies = pull_payloads(standin, repo, list(range(1, 21)))
        best = throughput(setup, args, write_bodies(workdir / "bodies", bodies))
        bodies_file = workdir / "bodies.json"
        bodies_file.write_text(
            json.dumps([[base64.b64encode(b).decode(), sign(b)] for b in bodies])
        )
        report(best, steady(setup, args, bodies_file), args)
    finally:
        standin.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
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
