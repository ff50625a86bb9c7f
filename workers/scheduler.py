"""RQ's scheduler process (the worker runs `with_scheduler`), ending in a JSON log line rather than a traceback.

RQ forks the scheduler into a process of its own, which ends on the first error it meets, typically Redis going
away under its once-a-second heartbeat. RQ logs that error (through the relay's logging, its traceback cut to the
exception's type) and raises it again, and multiprocessing then prints the raw traceback to stderr: lines no log
collector reads as the relay's JSON. Here the scheduler's loop ends on an error with one JSON line saying what
Redis answered, and its process exits without a traceback; the worker starts a scheduler again at its next
maintenance pass once Redis answers (or at the restart after its loop quit). RQ runs that pass every ten minutes; the
relay's worker every minute while jobs come, and each time its wait for a job runs out (about seven minutes) while
none does. The relay queues no scheduled job of its own, so no lead waits on it.

The relay's worker class lives here too, as it swaps that scheduler in; it also tells its running job of a warm
shutdown (`stopping`), so that a delivery job ends its slice after the batch under way instead of uploading on.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler

from app.store.refusals import describe

logger = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_SECONDS = 60


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
                "the scheduler stopped: redis %s; the worker starts it again at its next maintenance pass",
                describe(exc),
            )
        except Exception:
            logger.exception(
                "the scheduler stopped on an error; the worker starts it again at its next maintenance pass"
            )


class RelayWorker(SimpleWorker):
    """RQ's SimpleWorker whose scheduler is a `RelayScheduler`, and whose warm shutdown sets `stopping`."""

    def __init__(self, *args: Any, stopping: threading.Event | None = None, **kwargs: Any) -> None:
        # The maintenance pass starts a stopped scheduler again (and cleans RQ's registries): every minute while jobs
        # come, instead of RQ's ten.
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)
        self.stopping = stopping if stopping is not None else threading.Event()

    def handle_warm_shutdown_request(self) -> None:
        """RQ's hook for a first SIGINT/SIGTERM: the job under way (run in this process) is told to end soon."""
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.stopping.set()

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """As RQ 3.0's `Worker._start_scheduler`, with the scheduler class swapped."""
        # RQ's scheduler is untyped: held as Any, its calls are RQ's own.
        scheduler: Any = RelayScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler = scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return
        if not burst:
            scheduler.start()
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()
