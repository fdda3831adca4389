"""`changegate serve`: the web app under uvicorn, and its workers as child processes.

The workers run in processes of their own (`bot.worker_processes`) so that evaluating
deliveries never holds the GIL the web loop needs to ack them; the web process wakes them
when it stores work. One command, stopped together: SIGTERM (or Ctrl-C) tells the children
at once, uvicorn drains its requests, and the children get `worker_processes.GRACE_SECONDS`
to finish what they hold (within a web pod's 30 s grace).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

import uvicorn

from bot.app import AppOptions, create_app
from bot.metrics import configure_logging
from bot.settings import Settings
from bot.worker_processes import WorkerProcesses


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """`changegate serve`: JSON logs to stdout, uvicorn until SIGTERM/SIGINT, and the
    `worker_count` workers as child processes (`bot.worker_processes`), stopped with it.
    Raises `WorkersFailed` after shutting down if the workers kept crashing."""
    configure_logging()
    if "public_url" not in settings.model_fields_set:
        # The default names the address actually served, so the links the bot posts
        # (details pages, Slack buttons) work on `serve --port 9000` without more settings.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        settings = settings.model_copy(update={"public_url": f"http://{shown}:{port}"})
    children = WorkerProcesses(
        settings.worker_count,
        # the children read the same environment, and the address served
        env={**os.environ, "CHANGEGATE_PUBLIC_URL": settings.public_url},
        on_give_up=lambda: setattr(server, "should_exit", True),
    )
    app = create_app(settings, AppOptions(workers=0, wake=children.wake))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
    )
    server = _Server(config, on_signal=children.terminate)
    previous = {sig: signal.signal(sig, _after_shutdown) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if children.count:
            children.start()
        server.run()
    finally:
        children.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if children.gave_up:
        raise WorkersFailed("the worker processes kept crashing (see the log above)")


class WorkersFailed(RuntimeError):
    """`serve` stopped because its worker processes kept crashing."""


class _Server(uvicorn.Server):
    """uvicorn, telling the worker children to finish up the moment a signal arrives (they
    drain while the web server does)."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_signal = on_signal

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_signal()
        super().handle_exit(sig, frame)


def _after_shutdown(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn raises the signal it shut down for again once it is done: by then this
    process is stopping its workers, which it must finish rather than die mid-way."""
