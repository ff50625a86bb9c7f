"""The worker's RQ scheduler process: started with the worker, started again within seconds once it ended and Redis
answers, ending on an error with a JSON log line rather than a traceback, and stopped with its worker.

What it serves: RQ's scheduler only moves jobs from a queue's scheduled registry to the queue once they are due.
The relay puts none there (no `enqueue_in`/`enqueue_at`, no `Retry`, no `Repeat`): its retries are due times in
its store, found by the worker's ticker, and job timeouts and RQ's registry cleanup are the worker's own. What the
scheduler runs is what an operator schedules on the relay's queues (`rq enqueue --schedule-in`); no lead waits on
it.

How it ends: RQ forks the scheduler into a process of its own, which ends on the first error it meets, typically
Redis going away under its once-a-second heartbeat. RQ logs that error and raises it again, and multiprocessing
then prints the raw traceback to stderr: lines no log collector reads as the relay's JSON. `RelayScheduler`'s loop
ends on an error with one JSON line saying what Redis answered, and its process exits without a traceback.

Who restarts it: RQ 3.0 has no setting for the scheduler class its worker builds, and starts a scheduler that ended
again only at its maintenance pass, which an idle worker reaches only when its wait for a job runs out (about seven
minutes). So the relay runs RQ's worker loop without one (`with_scheduler=False`), and `WorkerScheduler` owns it
through RQ's public scheduler methods: the worker's ticker has it look every few seconds, and it starts the process
again once it takes the scheduler locks. Those locks (one per queue, held by one scheduler's name and refreshed by its
heartbeat) keep a single scheduler running across all workers: the others find them held and start none.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.scheduler import RQScheduler

from app.store.refusals import describe

logger = logging.getLogger(__name__)

# How often a worker whose scheduler process is not running tries the scheduler locks (two small Lua calls), to
# start it again once Redis answers, or to take over from a worker that stopped.
SCHEDULER_CHECK_SECONDS = 5.0
# How long a stopping worker waits for its scheduler to give its locks up before killing it (they then expire).
SCHEDULER_STOP_WAIT_SECONDS = 5.0


class RelayScheduler(RQScheduler):
    """RQ's scheduler whose loop, run in its forked process, logs the error it ends on and returns, and ends with
    its worker: a worker killed outright (kill -9, the OOM killer) would otherwise leave it running, unparented,
    holding the scheduler locks for as long as it lives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()  # built in the worker; its loop runs in a process forked from it

    def heartbeat(self) -> None:
        if os.getppid() != self._worker_pid:
            logger.warning("the scheduler's worker is gone: the scheduler stops and gives its locks up")
            # The loop stops at its next turn, releasing the locks for the next worker's scheduler.
            self.request_stop()  # type: ignore[no-untyped-call]
            return
        super().heartbeat()  # type: ignore[no-untyped-call]

    def work(self) -> None:
        try:
            super().work()  # type: ignore[no-untyped-call]
        except RedisError as exc:
            logger.error(
                "the scheduler stopped: redis %s; the worker starts it again once Redis answers", describe(exc)
            )
        except Exception:
            logger.exception("the scheduler stopped on an error; the worker starts it again within seconds")


class WorkerScheduler:
    """A worker's `RelayScheduler` process: started when this worker takes the scheduler locks, looked for again
    every `check_every_seconds` while none runs, stopped (its locks given up) with the worker. Safe to call from the
    ticker's thread and the worker's: one process at most runs at a time."""

    def __init__(
        self,
        connection: Redis,
        queue_names: Sequence[str],
        check_every_seconds: float = SCHEDULER_CHECK_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        # Built in the worker's process (the scheduler notes it as its parent), on a client whose timeouts bound each
        # heartbeat. RQ's scheduler is untyped: held as Any, its calls are RQ's own.
        self._scheduler: Any = RelayScheduler(list(queue_names), connection=connection)
        self._check_every = check_every_seconds
        self._now = now
        self._guard = threading.Lock()
        self._process: BaseProcess | None = None
        self._checked_at: float | None = None
        self._stopped = False

    def keep_running(self) -> bool:
        """Start the scheduler process unless it runs, the worker stops, or it was tried less than a check ago;
        True while it runs. Raises `RedisError` when Redis refuses the locks (the next check tries again)."""
        with self._guard:
            if self._stopped:
                return False
            if self._process is not None and self._process.is_alive():
                return True
            now = self._now()
            if self._checked_at is not None and now - self._checked_at < self._check_every:
                return False
            self._checked_at = now
            return self._start()

    def _start(self) -> bool:
        ended = self._process
        self._scheduler.acquire_locks()
        if not self._scheduler.acquired_locks:
            return False  # another worker's scheduler holds them
        if ended is not None:
            logger.info("the scheduler process had ended (exit code %s): started again", ended.exitcode)
        process: BaseProcess = self._scheduler.start()
        self._process = process
        return True

    def enqueue_due_jobs_once(self) -> None:
        """For a burst: queue the scheduled jobs due now if this worker takes the locks, then give them up."""
        scheduler = self._scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()

    def stop(self, wait_seconds: float = SCHEDULER_STOP_WAIT_SECONDS) -> None:
        """Stop the scheduler process for good: SIGTERM, on which its loop gives its locks up and ends within a
        second; killed if it has not ended after `wait_seconds` (its locks then expire within a minute)."""
        with self._guard:
            self._stopped = True
            process = self._process
        if process is None or not process.is_alive():
            return
        process.terminate()
        process.join(wait_seconds)
        if process.is_alive():
            logger.warning("the scheduler did not stop within %.0f s: killed", wait_seconds)
            process.kill()
            process.join()
