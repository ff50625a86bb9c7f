"""Delivery lanes: a job holds its lane's lease while it steps the deliverer, and gives it up when done."""

from __future__ import annotations

import random
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.store import Store
from tests.factories import make_lead
from workers.delivery import Deliverer
from workers.lanes import run_lane

SLICE_SECONDS = 15.0


class Outage:
    """Redis away for the next `calls` calls of whatever it is patched into, then back."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    def wrap(self, call: Any) -> Any:
        def maybe_down(*args: Any, **kwargs: Any) -> Any:
            if self.calls > 0:
                self.calls -= 1
                raise RedisConnectionError("down")
            return call(*args, **kwargs)

        return maybe_down


@pytest.fixture
def deliverer(store, cipher, settings, clock) -> Deliverer:
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    return Deliverer(store, None, cipher, settings, clock, random.Random(7))  # type: ignore[arg-type]


def test_a_lane_whose_job_lost_redis_mid_slice_is_free_as_soon_as_redis_answers(
    store: Store, clock, deliverer, monkeypatch
):
    outage = Outage(calls=3)  # the step, then the first two tries to give the lease up
    monkeypatch.setattr(deliverer, "step", outage.wrap(deliverer.step))
    monkeypatch.setattr(store.lanes, "release", outage.wrap(store.lanes.release))
    assert store.lanes.acquire(0)
    started = clock.now()

    with pytest.raises(RedisConnectionError):
        run_lane(deliverer, store.lanes, clock, 0, SLICE_SECONDS)

    assert 0 in store.lanes.free_lanes()  # not held by a job that is no more until the lease runs out
    assert clock.now() - started < 5


def test_a_lane_job_waits_for_redis_no_longer_than_its_lease_would_hold_the_lane(
    store: Store, clock, deliverer, settings, monkeypatch
):
    outage = Outage(calls=1_000_000)
    monkeypatch.setattr(deliverer, "step", outage.wrap(deliverer.step))
    monkeypatch.setattr(store.lanes, "release", outage.wrap(store.lanes.release))
    started = clock.now()

    with pytest.raises(RedisConnectionError):
        run_lane(deliverer, store.lanes, clock, 0, SLICE_SECONDS)

    assert clock.now() - started <= settings.leadrelay_visibility_timeout_seconds
