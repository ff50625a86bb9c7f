"""Delivery lanes: a job holds its lane's lease while it steps the deliverer, and gives it up when done."""

from __future__ import annotations

import random
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.store import Store
from tests.factories import make_lead
from workers.delivery import Deliverer, Sent, Wait
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


def test_a_lane_asked_to_stop_gives_its_lane_up_after_the_batch_under_way(store: Store, clock, deliverer, monkeypatch):
    sent: list[str] = []

    def send_a_batch() -> Sent:
        sent.append(f"batch-{len(sent)}")
        return Sent(sent[-1])  # work remains after every batch

    monkeypatch.setattr(deliverer, "step", send_a_batch)
    assert store.lanes.acquire(0)

    more = run_lane(deliverer, store.lanes, clock, 0, SLICE_SECONDS, stop_requested=lambda: bool(sent))

    assert sent == ["batch-0"]  # the batch under way settled, no other taken up
    assert more is False  # no follow-up job: the next worker's ticker starts the lane
    assert 0 in store.lanes.free_lanes()


def test_a_lane_waiting_for_a_request_slot_notices_a_stop_within_a_second(store: Store, clock, deliverer, monkeypatch):
    monkeypatch.setattr(deliverer, "step", lambda: Wait(60.0))  # careCycle's retryAfter holds every slot
    assert store.lanes.acquire(0)
    started = clock.now()
    stop_at = started + 2.5

    more = run_lane(deliverer, store.lanes, clock, 0, SLICE_SECONDS, stop_requested=lambda: clock.now() >= stop_at)

    assert more is False
    assert clock.now() - stop_at <= 1.0  # not the rest of the 15 s slice
    assert 0 in store.lanes.free_lanes()
