"""A delivery lane: one job stepping the deliverer until nothing is due, holding the lane's lease."""

from __future__ import annotations

from app.clock import Clock
from app.store.limiter import Lanes
from workers.delivery import Deliverer, Idle, Wait


def run_lane(deliverer: Deliverer, lanes: Lanes, clock: Clock, lane: int, slice_seconds: float) -> bool:
    """Step until idle or the slice is over; True when work remains and the lease is still held."""
    deadline = clock.now() + slice_seconds
    while clock.now() < deadline:
        lanes.renew(lane)
        step = deliverer.step()
        if isinstance(step, Wait):
            clock.sleep(min(step.seconds, max(deadline - clock.now(), 0.0)))
        elif isinstance(step, Idle):
            lanes.release(lane)
            # A lead may have arrived between the last look and the release: look once more.
            if not deliverer.is_due() or not lanes.acquire(lane):
                return False
    return True
