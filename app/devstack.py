"""The processes of one `leadrelay dev` run: starting them, watching them, stopping them in order.

Children run in process groups of their own, so a Ctrl-C in the terminal reaches only the supervisor,
which then stops them in order: web, worker and sandbox first, then a Redis it started, with SHUTDOWN
so the AOF is flushed. Each group is swept with SIGKILL at the end, so no grandchild outlives the run.

    DevError            startup cannot go on, or a child died; the message says why
     └── ChildExitedError   a child process exited while it should be running
    DevStopped          a stop signal arrived during startup (not a failure)
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from redis import Redis
from redis.exceptions import RedisError

from app.processes import reap_group

STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DevError(Exception):
    """`leadrelay dev` cannot start or keep running; the message is for the person at the terminal."""


class ChildExitedError(DevError):
    """A child process exited while it should have been running."""

    def __init__(self, name: str, returncode: int) -> None:
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
        super().__init__(f"the {name} process {how} unexpectedly")
        self.name = name
        self.returncode = returncode


class DevStopped(Exception):
    """Ctrl-C or SIGTERM arrived before everything was up."""


class DevStack:
    """The children of one `leadrelay dev` run, by name."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._redis_url: str | None = None  # only for a Redis this run started
        self._held_fds: list[int] = []
        self._stop = threading.Event()

    def say(self, message: str) -> None:
        """Tell the person at the terminal."""
        self._out.write(message + "\n")
        self._out.flush()

    def hold(self, fd: int) -> None:
        """Keep `fd` (a lock) open until the stack has stopped."""
        self._held_fds.append(fd)

    def request_stop(self) -> None:
        """Ask the run to end (safe from a signal handler)."""
        self._stop.set()

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        *,
        redis_url: str | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        """Start a child in a process group of its own; with `redis_url` it is the Redis stopped last.
        `pass_fds` stay open in the child (a lock it holds for as long as it runs)."""
        try:
            self._children[name] = subprocess.Popen(argv, env=dict(env), process_group=0, pass_fds=pass_fds)
        except OSError as exc:
            raise DevError(f"cannot start the {name} process ({argv[0]}): {exc.strerror}") from exc
        if redis_url is not None:
            self._redis_url = redis_url

    def check(self) -> None:
        """Raise `ChildExitedError` for the first child that has exited."""
        for name, process in self._children.items():
            code = process.poll()
            if code is not None:
                raise ChildExitedError(name, code)

    def wait_for(self, what: str, is_ready: Callable[[], bool], timeout_seconds: float) -> None:
        """Poll `is_ready` until true; raise if a child dies, a stop is asked, or time runs out."""
        deadline = time.monotonic() + timeout_seconds
        while not is_ready():
            self.check()
            if self._stop.is_set():
                raise DevStopped()
            if time.monotonic() > deadline:
                raise DevError(f"{what} did not answer within {timeout_seconds:g} s")
            self._stop.wait(POLL_INTERVAL_SECONDS)

    def supervise(self) -> None:
        """Block until a stop is asked; raise `ChildExitedError` if a child dies first."""
        while not self._stop.wait(POLL_INTERVAL_SECONDS):
            self.check()

    def stop(self) -> None:
        """Terminate the children (an own Redis last, with SHUTDOWN); kill any that outlive the timeout."""
        redis = self._children.pop("redis", None) if self._redis_url else None
        for process in reversed(self._children.values()):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, process in self._children.items():
            self._reap(name, process, deadline)
        if redis is not None and self._redis_url is not None:
            self._shutdown_redis(redis, self._redis_url)
        self._children.clear()
        self._redis_url = None
        while self._held_fds:
            os.close(self._held_fds.pop())

    def _shutdown_redis(self, process: subprocess.Popen[bytes], url: str) -> None:
        if process.poll() is None:
            try:
                Redis.from_url(url, socket_timeout=STOP_TIMEOUT_SECONDS).shutdown()
            except RedisError:
                process.terminate()  # SIGTERM also makes Redis flush the AOF and exit
        self._reap("redis", process, time.monotonic() + STOP_TIMEOUT_SECONDS)

    def _reap(self, name: str, process: subprocess.Popen[bytes], deadline: float) -> None:
        # The group also holds what the child started (gunicorn's workers, RQ's scheduler): none may outlive us.
        if not reap_group(process, deadline - time.monotonic()):
            self.say(f"leadrelay dev: the {name} process did not stop within {STOP_TIMEOUT_SECONDS:g} s; killed it")


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP call `stop` instead of interrupting."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda _signum, _frame: stop())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
