"""RQ's scheduler runs in a process forked from its worker: it ends with its worker, never outlives it; the worker
starts it again within a check once it ended, unless another worker's scheduler runs."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from rq import Queue

from workers.scheduler import RelayScheduler, WorkerScheduler


def scheduler_of_this_worker(redis, monkeypatch) -> RelayScheduler:
    scheduler = RelayScheduler([Queue("leadrelay-delivery", connection=redis)], connection=redis, interval=1)
    # Its loop runs in a thread here, where no signal handler can be installed (a forked process's main thread).
    monkeypatch.setattr(scheduler, "_install_signal_handlers", lambda: None)
    scheduler.acquire_locks()
    assert scheduler.acquired_locks
    return scheduler


def test_a_scheduler_whose_worker_was_killed_outright_stops_and_gives_its_locks_up(redis, monkeypatch):
    scheduler = scheduler_of_this_worker(redis, monkeypatch)
    monkeypatch.setattr(os, "getppid", lambda: 1)  # its worker died (kill -9): init took the process over
    loop = threading.Thread(target=scheduler.work, daemon=True)

    loop.start()
    loop.join(timeout=4)
    stopped = not loop.is_alive()
    scheduler.request_stop()  # a loop that would heartbeat on for as long as its process lives: ended here

    assert stopped
    assert scheduler.acquired_locks == set()
    assert redis.get(RelayScheduler.get_locking_key("leadrelay-delivery")) is None  # a new worker's takes them


def test_a_scheduler_whose_worker_runs_keeps_its_locks(redis, monkeypatch):
    scheduler = scheduler_of_this_worker(redis, monkeypatch)
    worker_pid = os.getpid()  # the scheduler was built in this process, its worker
    monkeypatch.setattr(os, "getppid", lambda: worker_pid)  # as its forked process sees it while the worker runs

    scheduler.heartbeat()

    assert not scheduler._stop_requested
    assert scheduler.acquired_locks == {"leadrelay-delivery"}


class FakeProcess:
    """The scheduler's forked process, as `WorkerScheduler` sees it: running until it ends or is stopped."""

    def __init__(self) -> None:
        self.running = True
        self.exitcode: int | None = None
        self.terminated = False

    def is_alive(self) -> bool:
        return self.running

    def end(self, exitcode: int = 0) -> None:
        self.running, self.exitcode = False, exitcode

    def terminate(self) -> None:
        self.terminated = True
        self.end(-15)

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def started(monkeypatch) -> list[FakeProcess]:
    """The processes the scheduler forks, in order (none is forked here)."""
    processes: list[FakeProcess] = []

    def start(scheduler: RelayScheduler) -> FakeProcess:
        processes.append(FakeProcess())
        return processes[-1]

    monkeypatch.setattr(RelayScheduler, "start", start)
    return processes


def worker_scheduler(redis, clock) -> WorkerScheduler:
    return WorkerScheduler(redis, ["leadrelay-fetch", "leadrelay-delivery"], check_every_seconds=5, now=clock.now)


def test_a_worker_starts_its_scheduler_process_at_its_first_check(redis, clock, started):
    scheduler = worker_scheduler(redis, clock)

    assert scheduler.keep_running()

    assert len(started) == 1
    assert all(redis.get(RelayScheduler.get_locking_key(q)) for q in ("leadrelay-fetch", "leadrelay-delivery"))


def test_a_running_scheduler_process_is_left_as_it_is(redis, clock, started):
    scheduler = worker_scheduler(redis, clock)
    scheduler.keep_running()

    for _ in range(3):
        clock.advance(5)
        assert scheduler.keep_running()

    assert len(started) == 1


def test_a_scheduler_process_that_ended_is_started_again_at_the_next_check(redis, clock, started):
    scheduler = worker_scheduler(redis, clock)
    scheduler.keep_running()
    started[0].end()  # it met a Redis error

    clock.advance(4)
    assert not scheduler.keep_running()  # the check a tick after its start: not yet
    clock.advance(1)
    assert scheduler.keep_running()

    assert len(started) == 2  # with its locks, refreshed under the same scheduler name


def test_no_scheduler_process_starts_while_another_workers_scheduler_holds_the_locks(redis, clock, started):
    for queue in ("leadrelay-fetch", "leadrelay-delivery"):
        redis.set(RelayScheduler.get_locking_key(queue), "another-workers-scheduler", ex=61)
    scheduler = worker_scheduler(redis, clock)

    assert not scheduler.keep_running()
    clock.advance(5)
    assert not scheduler.keep_running()

    assert started == []


def test_a_stopped_worker_stops_its_scheduler_process_and_starts_none_again(redis, clock, started):
    scheduler = worker_scheduler(redis, clock)
    scheduler.keep_running()

    scheduler.stop()
    clock.advance(60)

    assert started[0].terminated
    assert not scheduler.keep_running()  # a ticker still finishing its last tick
    assert len(started) == 1


def test_a_burst_queues_the_scheduled_jobs_due_and_gives_the_locks_up(redis, clock, started):
    queue = Queue("leadrelay-fetch", connection=redis)
    job = queue.enqueue_in(timedelta(seconds=-1), "workers.jobs.backfill_meta_leads")

    worker_scheduler(redis, clock).enqueue_due_jobs_once()

    assert queue.job_ids == [job.id]
    assert started == []
    assert list(redis.scan_iter("rq:scheduler*")) == []
