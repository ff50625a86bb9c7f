"""Intake waking delivery: once per request that queues a new lead, not for a repeat, not again within a moment of
finding every lane busy, and never failing a request whose leads are stored."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.intake import LANES_BUSY_MEMORY_SECONDS, AcceptedLead, Admission, Intake
from app.models import LeadStatus
from tests.factories import make_source, make_submission


class Lanes:
    """The wake-up intake is given: counts its calls; `idle` says whether a lane took the wake-up."""

    def __init__(self) -> None:
        self.idle = True
        self.error: Exception | None = None
        self.calls = 0

    def wake(self) -> bool:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.idle


@pytest.fixture
def lanes() -> Lanes:
    return Lanes()


@pytest.fixture
def intake(store, cipher, clock, lanes) -> Intake:
    return Intake(store, cipher, clock, lanes.wake)


def submit(intake: Intake, **admission) -> AcceptedLead:
    [result] = intake.accept(make_source(), [make_submission()], Admission(**admission))
    assert isinstance(result, AcceptedLead)
    return result


def test_intake_wakes_delivery_for_each_request_queuing_a_new_lead_while_a_lane_takes_the_wake_up(intake, lanes):
    submit(intake)
    submit(intake)

    assert lanes.calls == 2


def test_intake_does_not_wake_delivery_for_a_repeated_idempotency_key_nor_a_lead_kept_out_of_delivery(intake, lanes):
    first = submit(intake, idempotency_key="order-1")

    again = submit(intake, idempotency_key="order-1")
    submit(intake, status=LeadStatus.TEST)

    assert again.repeated and again.id == first.id
    assert lanes.calls == 1


def test_intake_does_not_wake_delivery_again_within_a_moment_of_finding_every_lane_busy(intake, lanes, clock):
    lanes.idle = False
    submit(intake)

    submit(intake)
    assert lanes.calls == 1
    clock.advance(LANES_BUSY_MEMORY_SECONDS)
    submit(intake)

    assert lanes.calls == 2


def test_a_wake_up_redis_refuses_does_not_fail_the_request_whose_lead_is_stored(intake, lanes, store):
    lanes.error = RedisConnectionError("down")

    accepted = submit(intake)

    assert accepted.status is LeadStatus.QUEUED
    assert store.leads.get(accepted.id).status is LeadStatus.QUEUED
