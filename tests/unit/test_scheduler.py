"""RQ's scheduler runs in a process forked from its worker: it ends with its worker, never outlives it."""

from __future__ import annotations

import os
import threading

from rq import Queue

from workers.scheduler import RelayScheduler


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


def test_a_worker_taking_jobs_looks_for_a_stopped_scheduler_every_minute_not_every_ten(settings, redis):
    # A scheduler ends on the first Redis error it meets; RQ's worker starts it again at its maintenance pass,
    # which RQ runs every ten minutes: without a scheduler that long after every Redis blip.
    from datetime import timedelta

    from rq.utils import now

    from workers.context import build_context
    from workers.runner import rq_worker

    worker = rq_worker(build_context(settings, redis=redis), name=None)
    worker.last_cleaned_at = now() - timedelta(seconds=61)

    assert worker.should_run_maintenance_tasks
