"""Memory of one `changegate serve` process: at rest, and after 10,000 deliveries.

    python bench/memory.py [--deliveries 10000] [--concurrency 8]

Starts the real CLI (`changegate serve --port P`, SQLite, GitHub configured, the default two
in-process workers), reads its RSS from /proc at rest, then posts signed deliveries that
are cheap to process (half `ping`, half events the App does not handle, with a repository
and an installation, so each is stored, claimed and marked ignored without any API call),
sampling RSS every 2,000 deliveries and once more after the queue has drained and the
process has sat idle. Target: flat, under 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ack import (  # noqa: E402
    app_key_pair,
    changegate_env,
    machine_note,
    nodelay_socket,
    rss_mb,
    sign,
    stop,
    wait_http,
)

UNHANDLED = ("star", "watch", "fork", "issues", "issue_comment", "release", "create", "delete")
_DEPTH = re.compile(r'^changegate_queue_depth\{state="(queued|processing)"\} (\S+)$', re.M)


def payload(i: int) -> tuple[str, bytes]:
    if i % 2 == 0:
        body = {"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "App"}}
        return "ping", json.dumps(body).encode()
    event = UNHANDLED[i % len(UNHANDLED)]
    body = {
        "action": "created",
        "repository": {"id": 1, "full_name": f"acme/repo-{i % 50}", "default_branch": "main"},
        "installation": {"id": 1},
        "sender": {"login": f"user{i % 100}", "id": i % 100},
        "note": "y" * 1500,
    }
    return event, json.dumps(body).encode()


async def post_all(url: str, start: int, count: int, concurrency: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(start, start + count):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            event, body = payload(i)
            r = await client.post(
                "/webhooks/github",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": event,
                    "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": sign(body),
                },
            )
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


def queue_depth(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(float(v) for _, v in _DEPTH.findall(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--step", type=int, default=2_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-mem-"))
    private, _ = app_key_pair()
    key_path = workdir / "app.pem"
    key_path.write_text(private)
    sock = nodelay_socket()
    port = sock.getsockname()[1]
    sock.close()  # `changegate serve` binds the port itself
    env = changegate_env(
        workdir, f"sqlite:///{workdir / 'changegate.db'}", "http://127.0.0.1:9", key_path, 2
    )
    env.pop("CHANGEGATE_WORKER_COUNT")  # serve's default
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [shutil.which("changegate") or "changegate", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    samples: list[tuple[str, float]] = []
    statuses: dict[int, int] = {}
    try:
        wait_http(f"{url}/healthz", timeout=60)
        time.sleep(3)
        samples.append(("at rest", rss_mb(proc.pid)))
        print(f"  at rest: {samples[-1][1]:.1f} MB", flush=True)
        started = time.perf_counter()
        sent = 0
        while sent < args.deliveries:
            n = min(args.step, args.deliveries - sent)
            for code, k in asyncio.run(post_all(url, sent, n, args.concurrency)).items():
                statuses[code] = statuses.get(code, 0) + k
            sent += n
            samples.append((f"after {sent:,}", rss_mb(proc.pid)))
            print(f"  {samples[-1][0]}: {samples[-1][1]:.1f} MB", flush=True)
        posting = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while queue_depth(url) > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        drained = time.perf_counter() - started
        samples.append(("queue drained", rss_mb(proc.pid)))
        time.sleep(5)
        samples.append(("idle 5 s later", rss_mb(proc.pid)))
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)

    rest = samples[0][1]
    peak = max(v for _, v in samples)
    print()
    print(
        f"one `changegate serve` (2 in-process workers, SQLite), {args.deliveries:,} deliveries "
        f"(ping + unhandled events), posted in {posting:.1f} s, drained after {drained:.1f} s; "
        f"answers {statuses}"
    )
    for label, value in samples:
        print(f"  {label:16s} {value:7.1f} MB")
    print(
        f"  growth {samples[-1][1] - rest:+.1f} MB after all, peak {peak:.1f} MB "
        f"(target: flat, < 200 MB)"
    )
    print(f"machine: {machine_note()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
