"""Edge memory: what 12 concurrent 24 MB POSTs that are not signed (or carry a forged
signature) make the server hold, old code vs new.

    python bench/edge_memory.py [--old DIR] [--clients 12] [--mb 24]

`DIR` is a checkout of the code to compare with (e.g. `git worktree add /tmp/old <commit>`).
Each server runs `create_app(Settings())` under uvicorn in a subprocess of its own (SQLite,
no workers, a GitHub webhook secret); the clients stream their bodies over raw sockets in
1 MB chunks. Reported: the server's RSS before, its peak (VmHWM) after, and the answers.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE = (
    "import uvicorn; from bot.app import create_app; from bot.settings import Settings; "
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, log_level='warning')"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def post(port: int, size: int, signature: str | None, answers: Counter[str]) -> None:
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
        "Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: x\r\n"
    )
    if signature:
        head += f"X-Hub-Signature-256: {signature}\r\n"
    chunk = b"a" * (1024 * 1024)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head.encode() + b"\r\n")
            sent = 0
            try:
                while sent < size:
                    sock.sendall(chunk[: size - sent])
                    sent += min(len(chunk), size - sent)
            except OSError:
                pass  # the server answered and closed before the whole body was sent
            answer = sock.recv(64)
            answers[answer.split(b" ", 2)[1].decode() if answer else "closed"] += 1
    except OSError as exc:
        answers[type(exc).__name__] += 1


def run(code: Path, clients: int, size: int, signature: str | None) -> str:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(code),
            "CHANGEGATE_DATABASE_URL": f"sqlite:///{tmp}/cg.db",
            "CHANGEGATE_POLICY": str(code / "policies" / "default.yml"),
            "CHANGEGATE_GITHUB_WEBHOOK_SECRET": "edge-bench-secret",
            "CHANGEGATE_WORKER_COUNT": "0",
        }
        server = subprocess.Popen([sys.executable, "-c", SERVE.format(port=port)], cwd=tmp, env=env)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            time.sleep(0.5)
            before = rss_kb(server.pid, "VmRSS")
            answers: Counter[str] = Counter()
            threads = [
                threading.Thread(target=post, args=(port, size, signature, answers))
                for _ in range(clients)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.monotonic() - started
            peak = rss_kb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(10)
    kind = "forged" if signature else "unsigned"
    return (
        f"{code}: {clients} x {size // 2**20} MB {kind}: RSS {before // 1024} MB -> peak "
        f"{peak // 1024} MB (+{(peak - before) // 1024} MB) in {took:.1f} s; answers {dict(answers)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", type=Path)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--mb", type=int, default=24)
    args = parser.parse_args()
    size = args.mb * 1024 * 1024
    for code in [c for c in (args.old, ROOT) if c is not None]:
        for signature in (None, "sha256=" + "0" * 64):
            print(run(code, args.clients, size, signature), flush=True)


if __name__ == "__main__":
    main()
