"""The workers' ticker finds work whose job was lost: it must survive any one failing step."""

from __future__ import annotations

from tests.support import wait_until
from workers.runner import DeliveryTicker


class FailingTicker(DeliveryTicker):
    """A ticker whose delivery step always fails, counting the steps it reaches."""

    def __init__(self) -> None:
        super().__init__(context=None, interval_seconds=0.01)  # type: ignore[arg-type]
        self.delivery_ticks = 0
        self.retention_ticks = 0

    def tick(self) -> bool:
        self.delivery_ticks += 1
        raise ValueError("boom")

    def tick_retrieval(self) -> int:
        return 0

    def tick_retention(self) -> int:
        self.retention_ticks += 1
        return 0


def test_ticker_keeps_ticking_and_runs_later_steps_when_a_step_raises(caplog):
    ticker = FailingTicker()
    ticker.start()
    try:
        wait_until(lambda: ticker.delivery_ticks >= 3 and ticker.retention_ticks >= 3, timeout=5)
    finally:
        ticker.stop()
        ticker.join(timeout=5)

    assert ticker.is_alive() is False
    assert "ticker step tick failed" in caplog.text


class QuittingWorker:
    """An RQ worker whose loop quits on an error at once (as it does on a Redis refusing its writes), until
    `stop_after` loops have run, when a SIGTERM comes."""

    def __init__(self, loops: list[float], clock, stop_after: int) -> None:
        self.key = "rq:worker:quitting"
        self._loops, self._clock, self._stop_after = loops, clock, stop_after
        self._stop_requested = False

    def work(self, **kwargs: object) -> bool:
        self._loops.append(self._clock.now())
        self._stop_requested = len(self._loops) >= self._stop_after
        return False


def test_a_worker_whose_loop_keeps_quitting_at_once_starts_again_each_time_later(settings, redis, clock):
    # A Redis at the edge of its memory takes the one write the worker waits for, then refuses RQ's next:
    # without a growing wait the worker starts again hundreds of times a second, logging an error each time.
    from workers.context import build_context
    from workers.runner import LONGEST_RESTART_DELAY_SECONDS, work_until_stopped

    context = build_context(settings, redis=redis, clock=clock)
    loops: list[float] = []
    make = lambda: QuittingWorker(loops, clock, stop_after=9)  # noqa: E731

    work_until_stopped(make(), make, context, burst=False)

    waits = [later - earlier for earlier, later in zip(loops, loops[1:], strict=False)]
    assert len(loops) == 9
    assert waits[0] > 0 and all(
        later >= 2 * earlier or later >= LONGEST_RESTART_DELAY_SECONDS
        for earlier, later in zip(waits, waits[1:], strict=False)
    )
    assert max(waits) <= LONGEST_RESTART_DELAY_SECONDS


def test_a_ticker_step_that_redis_refuses_logs_what_redis_answered_not_that_it_could_not_reach_it(caplog):
    import logging
    from types import SimpleNamespace

    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

    def raising(exc):
        def fail(*args, **kwargs):
            raise exc

        return fail

    context = SimpleNamespace(
        deliverer=SimpleNamespace(is_due=raising(ReadOnlyError("You can't write against a read only replica."))),
        meta=SimpleNamespace(due_fetches=raising(OutOfMemoryError("command not allowed when used memory"))),
        store=SimpleNamespace(
            retention=SimpleNamespace(
                purge_if_due=raising(RedisConnectionError("Error 111 connecting to redis://:s3cret@10.0.0.5:6379/0."))
            ),
            fingerprints=SimpleNamespace(secret=raising(ResponseError("MISCONF Errors writing to the AOF file"))),
        ),
        clock=SimpleNamespace(now=lambda: 1000.0),
        cipher=None,
        redis=None,
    )
    ticker = DeliveryTicker(context)  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING):
        ticker.tick()
        ticker.tick_retrieval()
        ticker.tick_retention()
        ticker.tick_fingerprint_secret()

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "delivery ticker: redis read-only (ReadOnlyError); trying again next tick",
        "retrieval ticker: redis out of memory (OutOfMemoryError); trying again next tick",
        "retention ticker: redis unreachable (ConnectionError); trying again next tick",
        "fingerprint secret ticker: redis writes stopped (ResponseError); trying again next tick",
    ]
    assert "s3cret" not in caplog.text


def test_a_redis_outage_is_told_once_per_change_not_once_per_tick(caplog):
    import logging

    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ReadOnlyError

    from workers.trouble import RedisTrouble

    clock = [0.0]
    trouble = RedisTrouble(now=lambda: clock[0], remind_every_seconds=60.0)
    unreachable = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    with caplog.at_level(logging.INFO, logger="workers.trouble"):
        for second in range(120):  # two minutes of ticks while Redis is away
            clock[0] = float(second)
            trouble.failed("delivery ticker", unreachable)
        trouble.failed("delivery ticker", ReadOnlyError("You can't write against a read only replica."))
        trouble.succeeded("delivery ticker")
        trouble.succeeded("delivery ticker")

    assert [record.getMessage() for record in caplog.records] == [
        "delivery ticker: redis unreachable (ConnectionError); trying again next tick",
        "delivery ticker: redis still unreachable (ConnectionError) since the last warning; trying again each tick",
        "delivery ticker: redis read-only (ReadOnlyError); trying again next tick",
        "delivery ticker: redis answers again",
    ]


def test_a_ticker_whose_steps_keep_failing_warns_once_for_each_step(caplog):
    import logging
    from types import SimpleNamespace

    from redis.exceptions import ConnectionError as RedisConnectionError

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    context = SimpleNamespace(
        deliverer=SimpleNamespace(is_due=unreachable),
        meta=SimpleNamespace(due_fetches=unreachable),
        store=SimpleNamespace(retention=SimpleNamespace(purge_if_due=unreachable)),
        clock=SimpleNamespace(now=lambda: 1000.0),
        redis=None,
    )
    ticker = DeliveryTicker(context)  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING):
        for _ in range(10):
            ticker.tick()
            ticker.tick_retrieval()
            ticker.tick_retention()

    assert len(caplog.records) == 3
