"""`leadrelay worker`: an RQ worker with scheduler, plus a ticker that wakes delivery when work is due.

The ticker is what makes the store the source of truth: whatever happened to earlier jobs (a worker
killed mid-batch, a lost wake-up), due leads and timed-out batches are found again within a second.
It also queues the Graph retrieval of every Meta lead whose (re)try is due, and the periodic Meta
backfill when its turn (a Redis key held for one interval, taken by one worker) comes round, and
runs the retention purge pass at most once a minute across all workers (likewise a Redis key). For a
worker started with `--name`, it keeps a liveness key that holds the name while the worker runs. Once a minute
it reads the fingerprint secret, sealing it again under the first key when another sealed it. Every few seconds
it starts the worker's RQ scheduler process again if it ended (`workers.scheduler`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from app.clock import Clock
from app.config import ConfigError, Settings
from app.crypto import FingerprintSecretError
from app.queues import ALL_QUEUES, DELIVERY_JOB_TIMEOUT_SECONDS, enqueue_backfill, enqueue_fetches, wake_delivery
from app.store import Store
from app.store.presence import WorkerPresence
from app.store.refusals import describe
from app.store.retention import PurgeReport
from workers.context import WORKER_REDIS_TIMEOUT_SECONDS, WorkerContext, build_context, use_context
from workers.scheduler import WorkerScheduler
from workers.trouble import RedisTrouble

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# A named worker's liveness key outlives its last refresh by this many ticks: a slow tick, or a worker paused for
# a few seconds, does not let it lapse, and a worker killed outright (kill -9, OOM) frees its name for a restart
# within seconds.
ALIVE_FOR_TICKS = 10
# How long RQ may keep a dead worker's registration (a busy SimpleWorker sends no heartbeat): the longest job
# timeout and RQ's minute.
REGISTRATION_LIFETIME_SECONDS = DELIVERY_JOB_TIMEOUT_SECONDS + 60
# A worker whose loop quit on an error starts again after this wait, doubled each time it quits again within
# STEADY_RUN_SECONDS of a start, up to the longest.
RESTART_DELAY_SECONDS = 0.5
LONGEST_RESTART_DELAY_SECONDS = 30.0
STEADY_RUN_SECONDS = 60.0
FINGERPRINT_SECRET_CHECK_SECONDS = 60.0


class DeliveryTicker(threading.Thread):
    """Every tick, starts a delivery job if work is due and no lane is running one, and queues due Meta retrieval."""

    def __init__(
        self,
        context: WorkerContext,
        interval_seconds: float = TICK_SECONDS,
        worker_name: str | None = None,
        scheduler: WorkerScheduler | None = None,
    ) -> None:
        super().__init__(name="delivery-ticker", daemon=True)
        self._context = context
        self._interval = interval_seconds
        self._worker_name = worker_name
        self._scheduler = scheduler
        self._stopped = threading.Event()
        self._secret_checked_at = -FINGERPRINT_SECRET_CHECK_SECONDS
        self._trouble = RedisTrouble()

    def run(self) -> None:
        self.keep_alive()
        while not self._stopped.wait(self._interval):
            for tick in (
                self.keep_alive,
                self.announce_rate_limit,
                self.tick,
                self.tick_retrieval,
                self.tick_retention,
                self.tick_fingerprint_secret,
                self.tick_scheduler,
            ):
                try:
                    tick()
                except Exception:
                    # The ticker is what finds work lost with its job: it must outlive any one bad tick.
                    logger.exception("ticker step %s failed; trying again next tick", tick.__name__)
        self.release_name()

    def keep_alive(self) -> None:
        """Refresh the liveness key of the worker's `--name` (none for a generated name), which holds the name."""
        if self._worker_name is None:
            return
        try:
            self._context.store.presence.mark_alive(
                self._worker_name, self._interval * ALIVE_FOR_TICKS, REGISTRATION_LIFETIME_SECONDS
            )
        except RedisError as exc:
            # The worker itself reports the outage; the next tick refreshes the key.
            logger.debug("liveness ticker: redis %s; trying again next tick", describe(exc))

    def announce_rate_limit(self) -> None:
        """Note the careCycle rate limit this worker paces by, for as long as its liveness key: `/v1/stats` and
        `leadrelay stats` show it, not the setting of the process that reads them."""
        try:
            self._context.store.budget.announce_limit(self._interval * ALIVE_FOR_TICKS)
        except RedisError as exc:
            # The worker itself reports the outage; stats show the configured limit until the next tick.
            logger.debug("rate limit ticker: redis %s; trying again next tick", describe(exc))

    def release_name(self) -> None:
        """Drop the liveness key once the worker stops, so that its name can be taken again at once."""
        if self._worker_name is None:
            return
        try:
            self._context.store.presence.mark_stopped(self._worker_name)
        except RedisError as exc:
            logger.debug("liveness ticker: redis %s; the key expires anyway", describe(exc))

    def tick(self) -> bool:
        """Wake delivery if due; True when a job was queued."""
        try:
            woken = self._context.deliverer.is_due() and wake_delivery(self._context.redis, self._context.store.lanes)
        except RedisError as exc:
            # The worker itself reports the outage; the ticker just tries again next tick.
            self._trouble.failed("delivery ticker", exc)
            return False
        self._trouble.succeeded("delivery ticker")
        return woken

    def tick_retrieval(self) -> int:
        """Queue a fetch job per Meta lead due a try, and the backfill when due; returns the jobs queued."""
        retrieval, redis = self._context.meta, self._context.redis
        queued = 0
        try:
            due = retrieval.due_fetches()
            enqueue_fetches(redis, due)
            queued += len(due)
            if retrieval.is_backfill_configured() and retrieval.take_backfill_turn():
                enqueue_backfill(redis)
                queued += 1
        except RedisError as exc:
            # A lead taken but not queued is due again once its lease runs out.
            self._trouble.failed("retrieval ticker", exc)
            return queued
        self._trouble.succeeded("retrieval ticker")
        return queued

    def tick_retention(self) -> PurgeReport | None:
        """Purge what retention says is due, unless a worker did within the last minute; None when skipped."""
        try:
            report = self._context.store.retention.purge_if_due(self._context.clock.now())
        except RedisError as exc:
            # Nothing is lost by waiting: due entries stay due until a pass gets through.
            self._trouble.failed("retention ticker", exc)
            return None
        self._trouble.succeeded("retention ticker")
        if report is not None and (report.records or report.leads):
            logger.info("purged %d records and %d leads past retention", report.records, report.leads)
        return report

    def tick_fingerprint_secret(self) -> None:
        """Once a minute, read the fingerprint secret, which seals it again under the first key if another sealed
        it: mid-rollout, a process still running with the old key first may seal it under the old key when it
        first needs it, after the processes with the new key first read it, and the old key is then dropped."""
        now = self._context.clock.now()
        if now - self._secret_checked_at < FINGERPRINT_SECRET_CHECK_SECONDS:
            return
        self._secret_checked_at = now
        try:
            self._context.store.fingerprints.secret(self._context.cipher)
        except RedisError as exc:
            self._trouble.failed("fingerprint secret ticker", exc)
            return
        except FingerprintSecretError as exc:
            logger.error("%s", exc)
            return
        self._trouble.succeeded("fingerprint secret ticker")

    def tick_scheduler(self) -> None:
        """Start the worker's RQ scheduler process again if it ended (checked every few seconds; none in a burst)."""
        if self._scheduler is None:
            return
        try:
            self._scheduler.keep_running()
        except RedisError as exc:
            self._trouble.failed("scheduler ticker", exc)
            return
        self._trouble.succeeded("scheduler ticker")

    def stop(self) -> None:
        self._stopped.set()


class RelayWorker(SimpleWorker):
    """RQ's SimpleWorker whose warm shutdown sets `stopping`."""

    def __init__(self, *args: Any, stopping: threading.Event | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = stopping if stopping is not None else threading.Event()

    def handle_warm_shutdown_request(self) -> None:
        """RQ's hook for a first SIGINT/SIGTERM: the job under way (run in this process) is told to end soon."""
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.stopping.set()


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> None:
    """Run one worker until stopped (or, with `burst`, until what is due now is done)."""
    context = build_context(settings)
    worker = rq_worker(context, name)
    if name:
        take_name(worker, context.store.presence)
    use_context(context)
    context.store.mark_schema_current()
    context.store.leads.start_counting_by_source(context.clock.now())
    for problem in context.store.persistence_problems():
        logger.error("%s", problem)
    # Sources change with a restart: with no facebook source left, no backfill runs to forget its forms' notes.
    context.meta.forget_forms_unconfigured()
    scheduler = WorkerScheduler(context.redis, ALL_QUEUES)
    ticker = DeliveryTicker(context, worker_name=name, scheduler=None if burst else scheduler)
    if burst:
        # Due retries and leads whose wake-up was lost have no job until the ticker queues one: queue now
        # what is due, so that a burst works it off before the queues run empty.
        ticker.tick()
        ticker.tick_retrieval()
        scheduler.enqueue_due_jobs_once()
    ticker.start()  # its first tick starts the scheduler process (a burst's ticker has none)
    try:
        work_until_stopped(worker, lambda: rq_worker(context, name), context, burst)
    finally:
        ticker.stop()
        ticker.join(timeout=TICK_SECONDS * ALIVE_FOR_TICKS)  # it drops the name's liveness key as it ends
        scheduler.stop()


def rq_worker(context: WorkerContext, name: str | None) -> SimpleWorker:
    """RQ's worker for the relay's queues, on a Redis client of its own: RQ sets that client's timeout to its wait
    for a job (minutes), which the store's client must not take on.

    SimpleWorker runs jobs in this process: no fork per job, and `context` is the one jobs use; its scheduler
    process is not RQ's to run (`workers.scheduler`). Fetch jobs are short and come first so a long delivery
    backlog cannot starve them.
    """
    connection = Redis.from_url(context.settings.redis_url, socket_connect_timeout=WORKER_REDIS_TIMEOUT_SECONDS)
    queues = [Queue(queue_name, connection=connection) for queue_name in ALL_QUEUES]
    return RelayWorker(queues, connection=connection, name=name, stopping=context.stopping)


def work_until_stopped(
    worker: SimpleWorker, next_worker: Callable[[], SimpleWorker], context: WorkerContext, burst: bool
) -> None:
    """Run RQ's loop until a stop is asked for (or a burst is done).

    RQ's loop quits on an error it cannot handle, such as Redis going away while a job ran (it needs Redis to
    record the failure), or refusing its writes. Unless a stop was asked for, the worker waits until Redis takes
    writes and starts again (`next_worker`), each time later when it quit again soon after its start: a Redis at
    the edge of its memory may take the one write that is waited for and refuse RQ's next.
    """
    quick_quits = 0
    while True:
        started = context.clock.now()
        try:
            # The scheduler is the run's own (`WorkerScheduler`), kept running whichever loop runs.
            worker.work(with_scheduler=False, burst=burst)
        except RedisError:
            pass  # its teardown needs Redis too
        if burst or _stop_was_asked(worker):
            return
        quick_quits = quick_quits + 1 if context.clock.now() - started < STEADY_RUN_SECONDS else 0
        logger.error("the worker stopped on an error; it starts again once Redis takes writes")
        context.clock.sleep(min(RESTART_DELAY_SECONDS * 2**quick_quits, LONGEST_RESTART_DELAY_SECONDS))
        wait_to_start_again(worker, context.store, context.clock)
        worker = next_worker()


def take_name(worker: SimpleWorker, presence: WorkerPresence) -> None:
    """Refuse the worker's `--name` while a worker of that name runs (its liveness key is there); otherwise clear
    a registration of that name left behind, so that RQ takes the name.

    A worker killed outright leaves its RQ registration without a death record, and RQ keeps it, refusing the
    name, for as long as a busy SimpleWorker may go without a heartbeat: the job timeout and a minute, an hour
    for a delivery job. Its liveness key lapses within seconds. A registration is cleared only when its worker
    kept a liveness key: one of an earlier version (during a rolling upgrade) keeps none, may well be running,
    and its name is refused as RQ refuses it.
    """
    registered = worker.connection.exists(worker.key) and not worker.connection.hexists(worker.key, "death")
    if presence.is_alive(worker.name) or (registered and not presence.kept_by_last_holder(worker.name)):
        raise ConfigError([f"--name: a worker named {worker.name!r} is already running"])
    if registered:
        logger.warning("worker %s: clearing the registration a worker of that name left when it died", worker.name)
        # As RQ records a worker's death: out of its worker registries (no ghost in `rq info`), marked dead.
        worker.register_death()  # type: ignore[no-untyped-call]


def _stop_was_asked(worker: SimpleWorker) -> bool:
    """Whether the worker's loop ended on SIGINT/SIGTERM: RQ notes when a stop was asked for (a busy worker
    also marks that it stops after its job)."""
    return getattr(worker, "_shutdown_requested_date", None) is not None or bool(
        getattr(worker, "_stop_requested", False)
    )


def wait_to_start_again(worker: SimpleWorker, store: Store, clock: Clock) -> None:
    """Once Redis takes writes again, drop the worker's own registration, left behind without a death record."""
    while True:
        wait_for_writes(store, clock)
        try:
            store.redis.delete(worker.key)
            return
        except RedisError:
            continue  # gone again: wait once more


def wait_for_writes(store: Store, clock: Clock, longest_wait_seconds: float = 10.0) -> None:
    """Return once Redis takes a write, trying again with growing waits.

    A PING is not enough: a full Redis (noeviction) or a read-only replica (a failover behind a stale
    endpoint) answers it and refuses every write RQ and the store make.
    """
    wait = 0.5
    while True:
        try:
            store.accepts_writes(clock.now())
            return
        except RedisError as exc:
            logger.debug("waiting for redis to take writes: %s", describe(exc))
            clock.sleep(wait)
            wait = min(wait * 2, longest_wait_seconds)
