"""A worker asked to stop (SIGTERM, as a deploy or Kubernetes sends it) ends its delivery job's slice after the batch
under way, instead of uploading on until the slice is over and the stop is cut short by the grace period."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.worker import WorkerStatus

from workers import context as worker_context
from workers import jobs
from workers.context import build_context, use_context
from workers.delivery import Sent
from workers.runner import RelayWorker


@pytest.fixture
def restored_signals() -> Iterator[None]:
    """RQ's stop handler installs its own for a second signal (a cold shutdown): put the test runner's back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_warm_shutdown_tells_the_job_under_way(redis, restored_signals):
    worker = RelayWorker([Queue("deliveries", connection=redis)], connection=redis)
    worker.set_state(WorkerStatus.BUSY)  # a job runs in this process

    worker.request_stop(signal.SIGTERM, None)

    assert worker.stopping.is_set()


def test_a_worker_not_asked_to_stop_tells_its_jobs_nothing(redis):
    worker = RelayWorker([Queue("deliveries", connection=redis)], connection=redis)

    assert not worker.stopping.is_set()


def test_a_delivery_job_of_a_stopping_worker_ends_after_the_batch_under_way(settings, redis, clock, monkeypatch):
    context = build_context(settings, redis=redis, clock=clock)
    uploads: list[str] = []

    def upload_then_get_a_sigterm() -> Sent:
        uploads.append(f"batch-{len(uploads)}")
        context.stopping.set()  # the signal comes while this batch is uploaded
        return Sent(uploads[-1])

    monkeypatch.setattr(context.deliverer, "step", upload_then_get_a_sigterm)
    monkeypatch.setattr(worker_context, "_current", None)  # restored after the test
    use_context(context)
    assert context.store.lanes.acquire(0)

    outcome = jobs.deliver_pending(0)

    assert outcome == "stopped"
    assert uploads == ["batch-0"]
    assert 0 in context.store.lanes.free_lanes()  # a running worker's ticker starts the lane again within a second


def test_a_backfill_job_of_a_stopping_worker_is_told_of_the_stop(settings, redis, clock, monkeypatch):
    context = build_context(settings, redis=redis, clock=clock)
    told: list[bool] = []

    def backfill_then_get_a_sigterm(stop_requested=lambda: False) -> int:
        told.append(stop_requested())
        context.stopping.set()  # the signal comes while a window is listed
        told.append(stop_requested())
        return 0

    monkeypatch.setattr(context.meta, "backfill", backfill_then_get_a_sigterm)
    monkeypatch.setattr(worker_context, "_current", None)  # restored after the test
    use_context(context)

    jobs.backfill_meta_leads()

    assert told == [False, True]
