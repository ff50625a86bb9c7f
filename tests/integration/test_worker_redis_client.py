"""The workers' Redis client against a Redis that stops answering."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.realredis import redis_server_process
from workers.context import WORKER_REDIS_TIMEOUT_SECONDS, build_context
from workers.runner import rq_worker


def test_a_worker_finds_within_seconds_that_redis_stopped_answering_though_rq_waits_minutes_for_jobs(
    settings, tmp_path: Path
):
    # A Redis that hangs, or a host gone without a word (a failover, a partition): RQ's client waits up to 415 s
    # for a job, and the store's commands, sharing that client, stood silent as long: nothing said, nothing done.
    with redis_server_process(tmp_path / "redis") as server:
        context = build_context(settings.replace(redis_url=server.url))
        rq_worker(context, name=None)  # as the worker command builds it: RQ sets its long timeout on its client
        context.store.batches.depth()  # a pooled connection, as a running worker holds
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                context.store.batches.depth()
            waited = time.monotonic() - started
        finally:
            server.process.send_signal(signal.SIGCONT)

    assert waited < WORKER_REDIS_TIMEOUT_SECONDS + 3
