"""The worker processes of `changegate serve`: started, woken, restarted and stopped by it.

`serve` runs its `CHANGEGATE_WORKER_COUNT` workers as child processes (`changegate worker`
with one worker each), so that evaluating deliveries never competes with the web loop for
the GIL and the default install uses every core. The parent and each child share a pipe:

- the parent writes a byte whenever a delivery is stored, so an idle child claims it at
  once instead of at its next poll;
- the child reads the pipe, and end-of-file means the parent is gone (even `kill -9`):
  the child then stops gracefully, so no worker outlives its server.

A child that exits while the server runs is restarted, loudly (an error log line naming its
exit code). A child that keeps crashing (more than `max_restarts` in `window` seconds) is
a broken installation, not bad luck: the supervisor then gives up, and `serve` shuts down
and exits non-zero rather than ack deliveries that nobody will process.

On SIGTERM the children are told at once (they stop claiming and finish what they hold,
while the web server drains), and `stop` waits for them up to its grace, then kills what
is left: a delivery killed mid-way keeps its lease in the inbox and is processed again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: `changegate worker`, one worker thread per process (`serve` starts one per worker).
WORKER_COMMAND = (sys.executable, "-m", "bot.cli", "worker")
#: How long `serve` waits for its workers after SIGTERM: the web pod's 30 s grace, less
#: a margin for the web server itself.
GRACE_SECONDS = 25.0


@dataclass
class _Child:
    slot: int
    process: subprocess.Popen[bytes]
    wake_fd: int  # the parent's (write) end of the child's wake pipe


@dataclass
class CrashPolicy:
    """When restarting stops being the answer: more than `max_restarts` in `window` s."""

    max_restarts: int = 5
    window: float = 60.0
    _recent: deque[float] = field(default_factory=deque)

    def allows_restart(self) -> bool:
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and now - self._recent[0] > self.window:
            self._recent.popleft()
        return len(self._recent) <= self.max_restarts


class WorkerProcesses:
    """`count` worker children of this process, each given `--wake-fd` (its pipe's read
    end); `on_give_up` is called (from the monitor thread) when they keep crashing."""

    def __init__(
        self,
        count: int,
        *,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] = WORKER_COMMAND,
        crashes: CrashPolicy | None = None,
        on_give_up: Callable[[], None] = lambda: None,
    ) -> None:
        self.count = count
        self.env = {**(os.environ if env is None else env), "CHANGEGATE_WORKER_COUNT": "1"}
        # one port cannot serve the metrics of several processes
        self.env.pop("CHANGEGATE_WORKER_METRICS_PORT", None)
        self.command = list(command)
        self.crashes = crashes or CrashPolicy()
        self.on_give_up = on_give_up
        self.gave_up = False
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [c.process.pid for c in self._children]

    def start(self) -> None:
        with self._lock:
            self._children = [self._spawn(slot) for slot in range(self.count)]
        self._monitor = threading.Thread(target=self._watch, name="worker-processes", daemon=True)
        self._monitor.start()
        log.info("%d worker processes started: pids %s", self.count, self.pids)

    def wake(self) -> None:
        """A delivery was stored: wake the idle children (never blocks; a full pipe
        already holds a wake-up)."""
        with self._lock:  # a restart closes a pipe: never write to a closed (reused) fd
            for child in self._children:
                try:  # noqa: SIM105 - on the ack path; cheaper than contextlib.suppress
                    os.write(child.wake_fd, b"\0")
                except OSError:  # full (the child has a wake-up waiting), or it exited
                    pass

    def terminate(self) -> None:
        """Tell every child to stop claiming and finish what it holds (SIGTERM); returns
        at once. Children that exit from now on are not restarted."""
        self._stopping.set()
        with self._lock:
            for child in self._children:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Terminate the children, wait up to `grace` seconds, kill what is left."""
        deadline = time.monotonic() + grace
        self.terminate()
        if self._monitor is not None:
            self._monitor.join(5)
            self.terminate()  # one it restarted meanwhile
        with self._lock:
            children = list(self._children)
        for child in children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error(
                    "worker process %d still busy after %.0f s: killed (its delivery's "
                    "lease expires and it is processed again)",
                    child.process.pid,
                    grace,
                )
                child.process.kill()
                child.process.wait()
        with self._lock:
            for child in self._children:
                os.close(child.wake_fd)
            self._children = []
        log.info("worker processes stopped")

    # -- children --------------------------------------------------------------------
    def _spawn(self, slot: int) -> _Child:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        try:
            process = subprocess.Popen(
                [*self.command, "--wake-fd", str(read_end)],
                env=self.env,
                pass_fds=(read_end,),
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)  # the child holds it now
        return _Child(slot, process, write_end)

    def _watch(self) -> None:
        """Restart children that exit while the server runs; give up on a crash loop."""
        while not self._stopping.wait(0.2):
            with self._lock:
                exited = [c for c in self._children if c.process.poll() is not None]
            for child in exited:
                if self._stopping.is_set():
                    return
                code = child.process.returncode
                if not self.crashes.allows_restart():
                    log.critical(
                        "worker processes keep exiting (the last with code %s): giving up; "
                        "the server stops",
                        code,
                    )
                    self.gave_up = True
                    self._stopping.set()
                    self.on_give_up()
                    return
                log.error(
                    "worker process %d exited with code %s: restarting it",
                    child.process.pid,
                    code,
                )
                fresh = self._spawn(child.slot)
                with self._lock:
                    self._children[self._children.index(child)] = fresh
                    os.close(child.wake_fd)


def follow_parent(wake_fd: int, wake: Callable[[], None], gone: Callable[[], None]) -> None:
    """In a worker child: call `wake` for each wake-up the parent writes, and `gone` once
    the parent has closed its end (it stopped, or died). Runs on a daemon thread."""

    def read() -> None:
        with os.fdopen(wake_fd, "rb", buffering=0) as pipe:
            while pipe.read(4096):
                wake()
        gone()

    threading.Thread(target=read, name="wake-pipe", daemon=True).start()
