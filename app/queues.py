"""RQ queue names and job paths (the only place they are spelled), and waking delivery."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from app.store.limiter import Lanes

DELIVERY_QUEUE = "leadrelay-delivery"
FETCH_QUEUE = "leadrelay-fetch"
# Listened to in this order: short fetch jobs first, so a delivery backlog cannot starve them.
ALL_QUEUES = (FETCH_QUEUE, DELIVERY_QUEUE)

DELIVER_PENDING_JOB = "workers.jobs.deliver_pending"

# A delivery job works for a bounded slice, then queues itself again, so lanes sharing one
# worker take turns; the timeout is a backstop (its batch is reclaimed if RQ kills it).
DELIVERY_JOB_TIMEOUT_SECONDS = 3600


def wake_delivery(redis: Redis, lanes: Lanes) -> bool:
    """Start a delivery job on the first lane that has none; False when every lane is busy."""
    for lane in range(lanes.count):
        if lanes.acquire(lane):
            enqueue_delivery(redis, lane)
            return True
    return False


def enqueue_delivery(redis: Redis, lane: int) -> None:
    """Queue a delivery job for a lane whose lease the caller holds."""
    Queue(DELIVERY_QUEUE, connection=redis).enqueue(
        DELIVER_PENDING_JOB,
        lane,
        job_timeout=DELIVERY_JOB_TIMEOUT_SECONDS,
        result_ttl=0,
        failure_ttl=7 * 24 * 3600,
        description=f"deliver pending leads (lane {lane})",
    )
