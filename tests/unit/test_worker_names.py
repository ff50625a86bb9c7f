"""A worker's `--name`: refused while a worker of that name runs, taken back from one that died without a stop."""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker, Worker

from app.config import ConfigError
from app.queues import ALL_QUEUES
from app.store import keys
from workers.context import build_context
from workers.runner import ALIVE_FOR_TICKS, DeliveryTicker, take_name


def named_worker(redis, name="w-0"):
    return SimpleWorker([Queue(queue, connection=redis) for queue in ALL_QUEUES], connection=redis, name=name)


def registered_names(redis):
    return [worker.name for worker in Worker.all(connection=redis)]


def test_a_name_is_refused_while_a_worker_of_that_name_keeps_its_liveness_key(redis, store):
    named_worker(redis).register_birth()
    store.presence.mark_alive("w-0", 5.0, 3660)

    with pytest.raises(ConfigError, match="a worker named 'w-0' is already running"):
        take_name(named_worker(redis), store.presence)

    assert registered_names(redis) == ["w-0"]  # the running worker's registration is left alone


def test_a_name_left_registered_by_a_worker_killed_outright_is_taken_back(redis, store):
    # Killed mid-job (kill -9): RQ keeps its registration, with no death record, for the job timeout and a minute;
    # the liveness key it kept has lapsed, the note that it kept one has not.
    named_worker(redis).register_birth()
    redis.set(keys.worker_named_key("w-0"), "1")
    restarted = named_worker(redis)

    take_name(restarted, store.presence)

    assert registered_names(redis) == []  # no ghost left for `rq info` to list
    restarted.register_birth()  # RQ takes the name again (it refused it, as a live worker's, before)
    assert registered_names(redis) == ["w-0"]


def test_a_name_registered_by_a_worker_that_keeps_no_liveness_key_is_refused_as_rq_refuses_it(redis, store):
    # An earlier version's worker, still running during a rolling upgrade, keeps no liveness key: nothing tells
    # it from a dead one, so its registration stands.
    named_worker(redis).register_birth()

    with pytest.raises(ConfigError, match="a worker named 'w-0' is already running"):
        take_name(named_worker(redis), store.presence)

    assert registered_names(redis) == ["w-0"]


def test_a_name_never_used_is_taken_as_it_is(redis, store):
    worker = named_worker(redis)

    take_name(worker, store.presence)
    worker.register_birth()

    assert registered_names(redis) == ["w-0"]


def test_the_ticker_keeps_a_named_workers_liveness_key_for_a_few_ticks_and_drops_it_when_stopped(
    settings, redis, clock
):
    context = build_context(settings, redis=redis, clock=clock)
    ticker = DeliveryTicker(context, interval_seconds=0.5, worker_name="w-0")

    ticker.keep_alive()
    assert 0 < redis.pttl(keys.worker_alive_key("w-0")) <= 0.5 * ALIVE_FOR_TICKS * 1000
    assert context.store.presence.is_alive("w-0")

    assert context.store.presence.kept_by_last_holder("w-0")

    ticker.start()
    ticker.stop()
    ticker.join(timeout=5)
    assert not context.store.presence.is_alive("w-0")  # a worker stopped by a signal frees its name at once
    assert not context.store.presence.kept_by_last_holder("w-0")


def test_the_ticker_of_a_worker_without_a_name_keeps_no_liveness_key(settings, redis, clock):
    ticker = DeliveryTicker(build_context(settings, redis=redis, clock=clock), interval_seconds=0.5)

    ticker.keep_alive()

    assert redis.keys(keys.worker_alive_key("*")) == []
