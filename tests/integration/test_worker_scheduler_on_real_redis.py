"""A `leadrelay worker` process and its RQ scheduler process, against a real Redis: a scheduler that ended is back
within seconds while the worker waits for jobs, one scheduler runs across workers, and none outlives its worker."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from app.crypto import generate_key
from app.processes import reap_group
from tests.realredis import redis_url_for_tests
from tests.support import is_running, start_worker_process, wait_until
from workers.scheduler import SCHEDULER_CHECK_SECONDS

# A scheduler that ended is started again at the worker's next check, and its process takes a moment to fork.
RESTART_BOUND_SECONDS = SCHEDULER_CHECK_SECONDS + 5


@pytest.fixture
def start_worker(redis: Redis, tmp_path: Path) -> Iterator[object]:
    """Start `leadrelay worker` processes on the test Redis (each in a process group of its own, reaped after)."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url_for_tests(),
        "CARECYCLE_API_KEY": "cc_unused",
        "LEADRELAY_ENCRYPTION_KEY": generate_key(),
    }
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        process = start_worker_process(name, env, tmp_path / f"{name}.log")
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        reap_group(process, 10)


def scheduler_pids(redis: Redis) -> set[int]:
    """The processes of the schedulers registered in Redis (each writes its pid as it starts)."""
    return {int(redis.hget(key, "pid") or 0) for key in redis.scan_iter("rq:scheduler:*")} - {0}


def running_scheduler(redis: Redis, other_than: int = 0) -> int | None:
    running = [pid for pid in scheduler_pids(redis) if pid != other_than and is_running(pid)]
    return running[0] if len(running) == 1 else None


def test_a_scheduler_process_that_ended_is_back_within_seconds_while_its_worker_waits_for_jobs(redis, start_worker):
    start_worker("keeps-a-scheduler")
    first = wait_until(lambda: running_scheduler(redis), timeout=30)
    assert isinstance(first, int)

    os.kill(first, signal.SIGKILL)  # as a scheduler ends on a Redis error: its worker idles on, waiting for jobs

    second = wait_until(lambda: running_scheduler(redis, other_than=first), timeout=RESTART_BOUND_SECONDS)
    assert isinstance(second, int)
    locks = [redis.get(key) for key in redis.scan_iter("rq:scheduler-lock:*")]
    assert len(locks) == 2 and len(set(locks)) == 1  # both queues' locks, held by the one scheduler


def test_a_scheduler_that_stopped_on_a_redis_error_is_back_within_seconds_once_redis_takes_its_writes(
    redis, start_worker, tmp_path
):
    start_worker("refused-scheduler")
    first = wait_until(lambda: running_scheduler(redis), timeout=30)
    (key,) = list(redis.scan_iter("rq:scheduler:*"))

    redis.set(key, "not a hash")  # Redis refuses the scheduler's next heartbeat (WRONGTYPE), and each new start
    wait_until(lambda: not is_running(first), timeout=10)
    redis.delete(key)  # and takes its writes again

    assert wait_until(lambda: running_scheduler(redis, other_than=first), timeout=RESTART_BOUND_SECONDS)
    log = (tmp_path / "refused-scheduler.log").read_text()
    assert "the scheduler stopped: redis error (ResponseError)" in log


def test_one_scheduler_runs_across_workers_and_another_worker_takes_over_when_its_worker_stops(redis, start_worker):
    first_worker = start_worker("first-worker")
    first = wait_until(lambda: running_scheduler(redis), timeout=30)
    second_worker = start_worker("second-worker")
    wait_until(lambda: redis.exists("rq:worker:second-worker"), timeout=30)
    assert isinstance(first, int)

    time.sleep(SCHEDULER_CHECK_SECONDS + 1)  # the second worker has looked for the locks: another worker holds them
    assert running_scheduler(redis) == first

    first_worker.send_signal(signal.SIGTERM)  # a deploy stops it; its scheduler gives the locks up
    first_worker.wait(timeout=30)
    taken_over = wait_until(lambda: running_scheduler(redis, other_than=first), timeout=RESTART_BOUND_SECONDS)
    assert isinstance(taken_over, int)
    assert second_worker.poll() is None


def test_a_worker_stopped_by_sigterm_leaves_no_scheduler_process_behind(redis, start_worker):
    worker = start_worker("stops-cleanly")
    scheduler = wait_until(lambda: running_scheduler(redis), timeout=30)
    assert isinstance(scheduler, int)

    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)

    assert not is_running(scheduler)
    assert list(redis.scan_iter("rq:scheduler-lock:*")) == []  # its locks given up for the next worker's
