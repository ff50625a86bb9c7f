"""RQ queue names and job paths (the only place they are spelled), and waking delivery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis import Redis
from rq import Queue
from rq.queue import EnqueueData

from app.store.limiter import Lanes

DELIVERY_QUEUE = "leadrelay-delivery"
FETCH_QUEUE = "leadrelay-fetch"
# Listened to in this order: short fetch jobs first, so a delivery backlog cannot starve them.
ALL_QUEUES = (FETCH_QUEUE, DELIVERY_QUEUE)

DELIVER_PENDING_JOB = "workers.jobs.deliver_pending"
FETCH_META_LEAD_JOB = "workers.jobs.fetch_meta_lead"
BACKFILL_META_LEADS_JOB = "workers.jobs.backfill_meta_leads"

# A delivery job works for a bounded slice, then queues itself again, so lanes sharing one
# worker take turns; the timeout is a backstop (its batch is reclaimed if RQ kills it).
DELIVERY_JOB_TIMEOUT_SECONDS = 3600
# One Graph request with its timeouts; the backfill lists a few pages per form.
FETCH_JOB_TIMEOUT_SECONDS = 120
BACKFILL_JOB_TIMEOUT_SECONDS = 900
FAILED_JOB_TTL_SECONDS = 7 * 24 * 3600


def wake_delivery(redis: Redis, lanes: Lanes) -> bool:
    """Start a delivery job on the first lane that has none; False when every lane is busy."""
    for lane in lanes.free_lanes():
        if lanes.acquire(lane):
            enqueue_delivery(redis, lane)
            return True
    return False


def enqueue_delivery(redis: Redis, lane: int) -> None:
    """Queue a delivery job for a lane whose lease the caller holds."""
    _enqueue(
        redis,
        DELIVERY_QUEUE,
        [_job(DELIVER_PENDING_JOB, (lane,), DELIVERY_JOB_TIMEOUT_SECONDS, f"deliver pending leads (lane {lane})")],
    )


def enqueue_fetches(redis: Redis, leases: Mapping[str, float]) -> None:
    """Queue the Graph retrieval of each `fetching` Meta lead (lead id -> the lease deadline it was taken under,
    which its job carries), in one round trip (a webhook or a ticker sweep can name many; the store's fetching
    set is the backstop for any job lost)."""
    jobs = [
        _job(FETCH_META_LEAD_JOB, (lead_id, deadline), FETCH_JOB_TIMEOUT_SECONDS, f"fetch meta lead {lead_id}")
        for lead_id, deadline in leases.items()
    ]
    _enqueue(redis, FETCH_QUEUE, jobs)


def enqueue_backfill(redis: Redis) -> None:
    """Queue one Meta backfill: list recent leads of every configured form, take in those never seen."""
    _enqueue(
        redis, FETCH_QUEUE, [_job(BACKFILL_META_LEADS_JOB, (), BACKFILL_JOB_TIMEOUT_SECONDS, "backfill meta leads")]
    )


def _job(job: str, args: tuple[object, ...], timeout: int, description: str) -> EnqueueData:
    """A job that leaves no result behind and keeps its failure for a week (for ops to read)."""
    return Queue.prepare_data(
        job, args=args, timeout=timeout, result_ttl=0, failure_ttl=FAILED_JOB_TTL_SECONDS, description=description
    )


def _enqueue(redis: Redis, queue: str, jobs: Sequence[EnqueueData]) -> None:
    """Queue `jobs` in one round trip."""
    if jobs:
        Queue(queue, connection=redis).enqueue_many(jobs)
