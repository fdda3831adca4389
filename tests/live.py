"""A real server for tests that need one: an app under uvicorn on 127.0.0.1, in a thread,
with its lifespan (workers, start-up log). Shared by the e2e, pages and setup tests
(import as `from live import LiveServer, free_port, wait_for`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")

START_SECONDS = 10
STOP_SECONDS = 20


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0, what: str = "") -> T:
    """Poll until `probe` returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        time.sleep(0.05)


class LiveServer:
    """`app` served on `port` (a free one unless given: settings may need to name it
    before the app exists). Use as a context manager; `url` is where it answers."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def _started(self) -> bool:
        if not self.thread.is_alive() and not self.server.started:
            raise RuntimeError("uvicorn did not start (its thread ended)")
        return bool(self.server.started)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(self._started, START_SECONDS, "uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(STOP_SECONDS)
