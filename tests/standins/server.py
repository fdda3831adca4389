"""Running a stand-in: a Starlette app under uvicorn in a daemon thread, on a free port.

`ThreadedServer` serves any app; `StandIn` is what the GitHub and GitLab stand-ins share
around it: start/stop (also as `with`), the recorded requests, injected faults, and the
dispatch of every request to the stand-in's own `_handle` in a worker thread."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class ThreadedServer:
    def __init__(self, app: Any, name: str, host: str = "127.0.0.1") -> None:
        self.app, self.name, self.host = app, name, host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Serve and return the port. proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY
        only on sockets that say so, and without it every keep-alive request waits ~40 ms
        for a delayed ACK."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and the `path` regex with `status`."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected fault"
    times: int = 1


class RecordedRequest(Protocol):
    """What `StandIn.calls` filters on; each stand-in records more (its own `Recorded`)."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


RecordedT = TypeVar("RecordedT", bound=RecordedRequest)


class StandIn(Generic[RecordedT]):
    """The machinery a forge stand-in shares. A subclass names itself (`NAME`), its fault
    messages, and answers a request in `_handle` (under `_lock`, in a worker thread)."""

    NAME: ClassVar[str]
    #: the message of an injected fault by status, when `fail` is given none
    FAULT_MESSAGES: ClassVar[dict[int, str]]
    FAULT_FALLBACK: ClassVar[str]

    def __init__(self, *, host: str, latency: float, methods: list[str]) -> None:
        self.latency = latency  # seconds added to every answer
        self.host = host
        self.port = 0
        self.requests: list[RecordedT] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._runner: ThreadedServer | None = None
        self.app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)])

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._runner = ThreadedServer(self.app, self.NAME, self.host)
        self.port = self._runner.start()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and recorded requests ---------------------------------------------------
    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue a fault for requests matching `method` ("*" for any) and the `path` regex
        (matched against the path as `requests` records it: decoded, on GitLab)."""
        default = self.FAULT_MESSAGES.get(status, self.FAULT_FALLBACK)
        with self._lock:
            self.faults.append(
                Fault(method.upper(), path, status, headers or {}, message or default, times)
            )

    def calls(self, method: str | None = None, pattern: str = "") -> list[RecordedT]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and re.search(pattern, r.path)
            ]

    def reset_calls(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- dispatch -----------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        body = await request.body()
        if self.latency > 0:  # waits without holding the lock: concurrent calls overlap
            await asyncio.sleep(self.latency)
        return await run_in_threadpool(self._handle, request, body)

    def _handle(self, request: Request, body: bytes) -> Response:
        raise NotImplementedError

    def _answer(self, method: str, path: str, route: Callable[[], Response]) -> Response:
        """The fault queued for `method path`, else what `route` answers; an HTTPError
        raised on the way becomes its JSON error answer."""
        try:
            return self._fault(method, path) or route()
        except HTTPError as exc:
            return JSONResponse(self._error_body(exc), status_code=exc.status, headers=exc.headers)

    def _error_body(self, exc: HTTPError) -> dict[str, Any]:
        return {"message": exc.message}

    def _fault(self, method: str, path: str) -> Response | None:
        for fault in self.faults:
            if fault.method in ("*", method) and re.search(fault.path, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return JSONResponse(
                    {"message": fault.message}, status_code=fault.status, headers=fault.headers
                )
        return None
