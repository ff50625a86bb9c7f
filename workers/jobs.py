"""RQ entry points only: each finds its context and calls into the module that does the work."""

from __future__ import annotations

import logging

from app.queues import enqueue_delivery
from workers.context import current_context
from workers.lanes import run_lane

logger = logging.getLogger(__name__)

LANE_SLICE_SECONDS = 15.0


def deliver_pending(lane: int) -> str:
    """Deliver due leads for a while on one lane; queue a follow-up job if work remains. A worker asked to stop
    ends the slice after the batch under way and gives the lane up for a running worker's ticker to start again."""
    context = current_context()
    more = run_lane(
        context.deliverer,
        context.store.lanes,
        context.clock,
        lane,
        LANE_SLICE_SECONDS,
        stop_requested=context.stopping.is_set,
    )
    if more:
        enqueue_delivery(context.redis, lane)
        return "continued"
    return "stopped" if context.stopping.is_set() else "idle"


def fetch_meta_lead(lead_id: str, lease_deadline: float | None = None) -> str:
    """Retrieve one `fetching` Meta lead from the Graph API; returns its status afterwards.

    A job carries the lease its lead was taken up under (`lease_deadline`), and ends without a Graph call
    when another job took the lead up since; a job queued without one (by an earlier version) fetches.
    A Graph failure is not this job's failure: the lead's next try (or the pause) is recorded in the
    store and the worker's ticker queues it when due. Anything else (Redis down, a bug) raises.
    """
    status = current_context().meta.fetch(lead_id, lease_deadline)
    return status.value if status is not None else "no longer fetching"


def backfill_meta_leads() -> str:
    """Take in the leads of every configured Meta form that no webhook announced; raises on a Graph failure. A worker
    asked to stop ends the job once the listing under way is taken in and noted (the next backfill lists on)."""
    context = current_context()
    taken = context.meta.backfill(stop_requested=context.stopping.is_set)
    return f"{taken} new leads"
