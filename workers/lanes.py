"""A delivery lane: one job stepping the deliverer until nothing is due, holding the lane's lease."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from redis.exceptions import RedisError

from app.clock import Clock
from app.store.limiter import Lanes
from workers.delivery import Deliverer, Idle, Wait

# Waits between tries to give a lane up once Redis went away under its job (then the last, repeated).
RELEASE_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0)
# A lane waiting for a request slot looks this often whether its worker was asked to stop.
STOP_CHECK_SECONDS = 1.0


def run_lane(
    deliverer: Deliverer,
    lanes: Lanes,
    clock: Clock,
    lane: int,
    slice_seconds: float,
    stop_requested: Callable[[], bool] = lambda: False,
) -> bool:
    """Step until idle or the slice is over; True when work remains and the lease is still held.

    A worker asked to stop (`stop_requested`: a SIGTERM's warm shutdown) ends the slice after the batch under way
    and gives the lane up, within a second when it waits for a request slot: another worker's ticker (or this
    worker's successor's) starts the lane again, instead of the stop waiting out the slice's uploads.

    Redis going away mid-slice ends the job (the error is raised), but first its lane is given up as soon as
    Redis answers again: the lease would otherwise keep the ticker from starting a job on the lane for as long
    as it lasts (the visibility timeout), and delivery would stand still that long after a Redis blip.
    """
    try:
        return _step_until_idle(deliverer, lanes, clock, lane, slice_seconds, stop_requested)
    except RedisError:
        _release_once_redis_answers(lanes, clock, lane)
        raise


def _release_once_redis_answers(lanes: Lanes, clock: Clock, lane: int) -> None:
    """Give the lane up, trying again while Redis does not answer, until the lease would have run out anyway."""
    give_up_at = clock.now() + lanes.ttl_seconds
    for delay in itertools.chain(RELEASE_RETRY_SECONDS, itertools.repeat(RELEASE_RETRY_SECONDS[-1])):
        try:
            lanes.release(lane)
            return
        except RedisError:
            if clock.now() + delay > give_up_at:
                return
            clock.sleep(delay)


def _step_until_idle(
    deliverer: Deliverer,
    lanes: Lanes,
    clock: Clock,
    lane: int,
    slice_seconds: float,
    stop_requested: Callable[[], bool],
) -> bool:
    """`run_lane`'s loop."""
    deadline = clock.now() + slice_seconds
    while clock.now() < deadline:
        if stop_requested():
            lanes.release(lane)
            return False
        lanes.renew(lane)
        step = deliverer.step()
        if isinstance(step, Wait):
            clock.sleep(min(step.seconds, STOP_CHECK_SECONDS, max(deadline - clock.now(), 0.0)))
        elif isinstance(step, Idle):
            lanes.release(lane)
            # A lead may have arrived between the last look and the release: look once more.
            if not deliverer.is_due() or not lanes.acquire(lane):
                return False
    return True
