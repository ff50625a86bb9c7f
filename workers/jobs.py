"""RQ entry points only: each finds its context and calls into the module that does the work."""

from __future__ import annotations

import logging

from app.queues import enqueue_delivery
from workers.context import current_context
from workers.lanes import run_lane

logger = logging.getLogger(__name__)

LANE_SLICE_SECONDS = 15.0


def deliver_pending(lane: int) -> str:
    """Deliver due leads for a while on one lane; queue a follow-up job if work remains."""
    context = current_context()
    more = run_lane(context.deliverer, context.store.lanes, context.clock, lane, LANE_SLICE_SECONDS)
    if more:
        enqueue_delivery(context.redis, lane)
        return "continued"
    return "idle"
