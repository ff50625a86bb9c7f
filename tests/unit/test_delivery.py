"""Delivery engine, step by step, against a scripted careCycle: every answer leads to the right states."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from app.models import LeadStatus
from app.store import Store
from app.store.limiter import Slot
from tests.factories import make_lead, make_record
from workers.carecycle import (
    CareCycleAmbiguousError,
    CareCycleAuthError,
    CareCycleError,
    CareCycleNotFoundError,
    CareCycleRateLimitedError,
    CareCycleRequestError,
    CareCycleTransientError,
    CareCycleValidationError,
    UploadResult,
)
from workers.delivery import Deliverer, Idle, Sent, Wait

Answer = UploadResult | CareCycleError | Callable[[list[dict[str, Any]]], UploadResult]


class ScriptedCareCycle:
    """Answers uploads from a script (then succeeds); remembers every batch it was sent."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.batches: list[list[dict[str, Any]]] = []

    def upload(self, records: Sequence[dict[str, Any]]) -> UploadResult:
        batch = [dict(r) for r in records]
        self.batches.append(batch)
        answer: Answer = self.script.pop(0) if self.script else UploadResult(succeeded=len(batch))
        if isinstance(answer, CareCycleError):
            raise answer
        if callable(answer):
            return answer(batch)
        return answer

    def external_ids(self) -> list[list[str]]:
        return [[r["externalId"] for r in batch] for batch in self.batches]


@pytest.fixture
def carecycle() -> ScriptedCareCycle:
    return ScriptedCareCycle()


@pytest.fixture
def deliverer(store, carecycle, cipher, settings, clock) -> Deliverer:
    return Deliverer(store, carecycle, cipher, settings, clock, random.Random(7))  # type: ignore[arg-type]


def admit(store: Store, cipher, clock, count: int = 1, **overrides: Any) -> list[str]:
    leads = [make_lead(**overrides) for _ in range(count)]
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    return [lead.id for lead in leads]


def status_of(store: Store, lead_id: str) -> LeadStatus:
    return store.leads.get(lead_id).status


def next_slot(clock, store: Store) -> None:
    clock.advance(store.budget.interval_seconds)


def test_delivery_sends_a_queued_lead_and_marks_it_delivered(store, cipher, clock, deliverer, carecycle):
    [lead_id] = admit(store, cipher, clock)

    step = deliverer.step()

    assert isinstance(step, Sent)
    assert carecycle.external_ids() == [[lead_id]]
    lead = store.leads.get(lead_id)
    assert lead.status is LeadStatus.DELIVERED
    assert lead.attempts == 1
    assert lead.delivered_at == clock.now()
    assert [e.status for e in lead.events] == [LeadStatus.DELIVERED, LeadStatus.SENDING, LeadStatus.QUEUED]
    assert store.leads.status_counts()[LeadStatus.DELIVERED] == 1
    assert store.batches.in_flight() == 0


def test_delivery_is_idle_when_nothing_is_queued(deliverer, carecycle):
    assert isinstance(deliverer.step(), Idle)
    assert carecycle.batches == []


def test_delivery_fills_batches_of_200_from_a_backlog(store, cipher, clock, deliverer, carecycle):
    admit(store, cipher, clock, count=450)

    for _ in range(3):
        assert isinstance(deliverer.step(), Sent)
        next_slot(clock, store)

    assert [len(b) for b in carecycle.batches] == [200, 200, 50]
    assert store.leads.status_counts()[LeadStatus.DELIVERED] == 450


def test_delivery_waits_for_the_next_request_slot(store, cipher, clock, deliverer, carecycle):
    admit(store, cipher, clock, count=2)
    deliverer.step()
    admit(store, cipher, clock)

    step = deliverer.step()

    assert isinstance(step, Wait)
    assert step.seconds == pytest.approx(store.budget.interval_seconds)
    assert len(carecycle.batches) == 1


def test_delivery_rejects_records_careCycle_refuses_and_delivers_their_batch_mates(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=3)
    carecycle.script.append(UploadResult(succeeded=2, failures={ids[1]: "Invalid phone number"}))

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.DELIVERED, LeadStatus.REJECTED, LeadStatus.DELIVERED]
    assert store.leads.get(ids[1]).error == "Invalid phone number"


def test_a_record_careCycle_counts_as_failed_without_naming_it_is_retried_when_its_customers_are_listed(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=3)
    listed = frozenset({ids[0]})  # ids[2] is in neither list: it may be the failure careCycle did not name
    carecycle.script.append(
        UploadResult(succeeded=1, failures={ids[1]: "Invalid phone number"}, failed=2, confirmed=listed)
    )

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.DELIVERED, LeadStatus.REJECTED, LeadStatus.RETRYING]
    lead = store.leads.get(ids[2])
    assert lead.attempts == 1 and lead.next_attempt_at is not None
    assert lead.error == "careCycle counted the record as failed without naming it"


def test_an_unnamed_failure_leaves_leads_delivered_when_careCycle_lists_fewer_customers_than_it_took(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=3)
    partial = frozenset({ids[0]})  # 2 taken, 1 listed: the list does not tell which leads were taken
    carecycle.script.append(UploadResult(succeeded=2, failures={}, failed=1, confirmed=partial))

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.DELIVERED] * 3


def test_an_unnamed_failure_leaves_leads_delivered_when_careCycle_lists_no_customers(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=2)
    carecycle.script.append(UploadResult(succeeded=1, failures={}, failed=1))  # nothing says which one failed

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.DELIVERED, LeadStatus.DELIVERED]


def test_unnamed_failures_of_a_batch_careCycle_took_none_of_are_retried_not_delivered(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=3)
    carecycle.script.append(UploadResult(succeeded=0, failures={"ext-unknown": "bad"}, failed=3))

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.RETRYING] * 3


def test_delivery_rejects_only_named_records_when_carecycle_returns_422(store, cipher, clock, deliverer, carecycle):
    ids = admit(store, cipher, clock, count=4)
    carecycle.script.append(CareCycleValidationError("careCycle 422", {0: "phoneNumber: bad", 2: "email: bad"}))

    deliverer.step()
    assert [status_of(store, i) for i in ids] == [
        LeadStatus.REJECTED,
        LeadStatus.QUEUED,
        LeadStatus.REJECTED,
        LeadStatus.QUEUED,
    ]
    assert store.leads.get(ids[0]).error == "phoneNumber: bad"
    next_slot(clock, store)
    deliverer.step()

    assert carecycle.external_ids()[1] == [ids[1], ids[3]]
    assert status_of(store, ids[1]) is LeadStatus.DELIVERED
    assert status_of(store, ids[3]) is LeadStatus.DELIVERED


def test_delivery_rejects_the_first_record_of_a_batch_without_halving_when_a_422_names_it_alone(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=2)
    carecycle.script.append(CareCycleValidationError("careCycle 422", {0: "phoneNumber: bad"}))

    deliverer.step()

    assert [len(batch) for batch in carecycle.batches] == [2]  # one request: the 422 said which record
    assert [status_of(store, i) for i in ids] == [LeadStatus.REJECTED, LeadStatus.QUEUED]


def test_delivery_isolates_the_offending_record_when_carecycle_answers_another_4xx(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=8)
    bad = ids[5]

    def refuse_batches_with_bad(batch: list[dict[str, Any]]) -> UploadResult:
        if any(r["externalId"] == bad for r in batch):
            raise CareCycleRequestError("careCycle 400 BAD_REQUEST: malformed", status=400)
        return UploadResult(succeeded=len(batch))

    carecycle.script.extend([refuse_batches_with_bad] * 10)

    deliverer.step()

    assert store.leads.get(bad).status is LeadStatus.REJECTED
    assert store.leads.get(bad).error == "careCycle 400 BAD_REQUEST: malformed"
    assert all(status_of(store, i) is LeadStatus.DELIVERED for i in ids if i != bad)
    assert [len(b) for b in carecycle.batches] == [8, 4, 4, 2, 1, 1, 2]
    assert store.batches.in_flight() == 0


def test_leads_failing_together_each_wait_their_own_backoff_outside_a_fault_group(
    store, cipher, clock, deliverer, carecycle
):
    [tried] = admit(store, cipher, clock)
    carecycle.script.append(CareCycleAmbiguousError("timeout"))
    deliverer.step()
    clock.advance(max(store.leads.get(tried).next_attempt_at - clock.now(), store.budget.interval_seconds))
    [fresh] = admit(store, cipher, clock)
    carecycle.script.append(CareCycleAmbiguousError("timeout"))

    deliverer.step()

    assert carecycle.external_ids()[1] == [tried, fresh]
    waits = {i: store.leads.get(i).next_attempt_at - clock.now() for i in (tried, fresh)}
    assert (store.leads.get(tried).attempts, store.leads.get(fresh).attempts) == (2, 1)
    assert waits[fresh] < waits[tried]  # its first retry's backoff, not its batch-mate's second


def test_delivery_retries_transient_failures_with_backoff_under_the_same_external_ids(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=2)
    carecycle.script.extend(
        [CareCycleTransientError("careCycle 500 INTERNAL_ERROR", 500), CareCycleAmbiguousError("timeout")]
    )

    deliverer.step()
    lead = store.leads.get(ids[0])
    assert lead.status is LeadStatus.RETRYING
    assert lead.error == "careCycle 500 INTERNAL_ERROR"
    assert lead.next_attempt_at is not None and clock.now() + 0.5 <= lead.next_attempt_at <= clock.now() + 1.0
    assert isinstance(deliverer.step(), Idle)

    clock.advance(max(lead.next_attempt_at - clock.now(), store.budget.interval_seconds))
    assert isinstance(deliverer.step(), Sent)
    assert store.leads.get(ids[0]).status is LeadStatus.RETRYING
    second_wait = store.leads.get(ids[0]).next_attempt_at - clock.now()
    assert 1.0 <= second_wait <= 2.0

    clock.advance(second_wait)
    assert isinstance(deliverer.step(), Sent)
    assert carecycle.external_ids() == [ids, ids, ids]
    lead = store.leads.get(ids[0])
    assert (lead.status, lead.attempts, lead.error) == (LeadStatus.DELIVERED, 3, None)
    # retrying -> queued when the retry time comes -> sending -> delivered
    assert [e.status for e in lead.events][:4] == [
        LeadStatus.DELIVERED,
        LeadStatus.SENDING,
        LeadStatus.QUEUED,
        LeadStatus.RETRYING,
    ]


def test_a_lead_failing_again_and_again_is_retried_within_the_maximum_delay(
    store, cipher, clock, deliverer, carecycle, settings
):
    [lead_id] = admit(store, cipher, clock)
    waits = []
    for _ in range(10):  # 1, 2, 4, ... 512 s uncapped: the last ones over the 60 s maximum delay
        carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
        deliverer.step()
        lead = store.leads.get(lead_id)
        assert lead.status is LeadStatus.RETRYING and lead.next_attempt_at is not None
        waits.append(lead.next_attempt_at - clock.now())
        clock.advance(max(waits[-1], store.budget.interval_seconds))

    assert max(waits) <= settings.leadrelay_retry_max_delay_seconds
    assert waits[-1] >= settings.leadrelay_retry_max_delay_seconds / 2  # jitter spreads, never halves it further


def test_a_lead_waiting_for_its_retry_is_not_sent_along_with_a_newer_one(store, cipher, clock, carecycle, settings):
    slow_retries = settings.replace(leadrelay_retry_base_seconds=30.0)
    deliverer = Deliverer(store, carecycle, cipher, slow_retries, clock, random.Random(7))  # type: ignore[arg-type]
    [waiting] = admit(store, cipher, clock)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
    deliverer.step()
    next_slot(clock, store)
    [newer] = admit(store, cipher, clock)

    deliverer.step()

    assert carecycle.external_ids() == [[waiting], [newer]]
    # careCycle took the newer one: the waiting lead is due now (it goes with the next request, not this one).
    assert status_of(store, waiting) is LeadStatus.QUEUED


def test_delivery_gives_up_after_the_maximum_age(store, cipher, clock, deliverer, carecycle, settings):
    [lead_id] = admit(store, cipher, clock)
    clock.advance(settings.leadrelay_max_age_hours * 3600)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))

    deliverer.step()

    lead = store.leads.get(lead_id)
    assert (lead.status, lead.error) == (LeadStatus.DEAD, "gave up after maximum age: careCycle 503")


def test_a_lead_an_operator_retries_after_the_maximum_age_gets_a_fresh_maximum_age_from_the_retry(
    store, cipher, clock, deliverer, carecycle, settings
):
    max_age = settings.leadrelay_max_age_hours * 3600
    [lead_id] = admit(store, cipher, clock)
    clock.advance(max_age)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
    deliverer.step()
    assert status_of(store, lead_id) is LeadStatus.DEAD
    clock.advance(3600)  # the operator fixes the cause, then re-queues the dead lead
    store.retries.requeue([lead_id], clock.now(), "retried by alice")
    retried_at = clock.now()

    for _ in range(3):  # a careCycle hiccup after the retry: tried again, not given up at once
        carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
        deliverer.step()
        lead = store.leads.get(lead_id)
        assert lead.status is LeadStatus.RETRYING
        clock.advance(max(lead.next_attempt_at - clock.now(), store.budget.interval_seconds))
    clock.advance(retried_at + max_age - clock.now())
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
    deliverer.step()

    lead = store.leads.get(lead_id)
    assert (lead.status, lead.error) == (LeadStatus.DEAD, "gave up after maximum age: careCycle 503")
    assert lead.attempts == 5  # kept across the retry


def test_a_lead_given_up_at_the_maximum_age_says_so_in_its_error_not_only_the_last_fault(
    store, cipher, clock, deliverer, carecycle, settings
):
    [lead_id] = admit(store, cipher, clock)
    carecycle.script.append(CareCycleTransientError("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", 503))
    deliverer.step()
    clock.advance(settings.leadrelay_max_age_hours * 3600)
    carecycle.script.append(CareCycleTransientError("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", 503))

    deliverer.step()

    lead = store.leads.get(lead_id)
    assert lead.status is LeadStatus.DEAD
    # What the dashboard's and the lead list's reason column shows: why it stopped, then the last fault.
    assert lead.error == "gave up after maximum age: careCycle 503 SERVICE_UNAVAILABLE: Service unavailable"


def test_delivery_holds_every_request_until_retry_after_passes(store, cipher, clock, deliverer, carecycle):
    [lead_id] = admit(store, cipher, clock)
    carecycle.script.append(CareCycleRateLimitedError("careCycle 429 RATE_LIMIT_EXCEEDED", retry_after=30))

    deliverer.step()
    assert store.leads.get(lead_id).next_attempt_at == clock.now() + 30
    [later_id] = admit(store, cipher, clock)
    clock.advance(5)

    step = deliverer.step()
    assert isinstance(step, Wait) and step.seconds == pytest.approx(25)
    clock.advance(25)
    deliverer.step()
    assert carecycle.external_ids() == [[lead_id], [later_id, lead_id]]
    assert status_of(store, lead_id) is LeadStatus.DELIVERED


def test_delivery_pauses_on_auth_errors_keeps_attempts_and_resumes_after_a_probe(
    store, cipher, clock, deliverer, carecycle, settings
):
    ids = admit(store, cipher, clock, count=3)
    carecycle.script.append(CareCycleAuthError("careCycle 401 UNAUTHORIZED: bad key", 401))

    deliverer.step()

    pause = store.pause.get()
    assert pause is not None and pause.reason == "careCycle 401 UNAUTHORIZED: bad key"
    assert all(store.leads.get(i).status is LeadStatus.QUEUED for i in ids)
    assert all(store.leads.get(i).attempts == 0 for i in ids)
    assert isinstance(deliverer.step(), Idle)
    assert not deliverer.is_due()

    clock.advance(settings.leadrelay_pause_probe_seconds)
    assert deliverer.is_due()  # the probe is due the moment its interval has passed
    carecycle.script.append(CareCycleAuthError("careCycle 401 UNAUTHORIZED: bad key", 401))
    deliverer.step()
    assert store.pause.get() is not None
    assert len(carecycle.batches) == 2

    clock.advance(settings.leadrelay_pause_probe_seconds)
    deliverer.step()
    assert store.pause.get() is None
    assert all(store.leads.get(i).status is LeadStatus.DELIVERED for i in ids)
    assert all(store.leads.get(i).attempts == 1 for i in ids)


def test_of_several_workers_only_one_sends_the_probe_of_a_pause(store, cipher, clock, deliverer, carecycle, settings):
    admit(store, cipher, clock, count=201)  # more than one batch: the other worker would find leads to send
    carecycle.script.append(CareCycleAuthError("careCycle 401 UNAUTHORIZED: bad key", 401))
    deliverer.step()
    other_worker = Deliverer(store, carecycle, cipher, settings, clock, random.Random(8))  # type: ignore[arg-type]
    steps_meanwhile = []

    def slow_refusal(batch: list[dict[str, Any]]) -> UploadResult:
        clock.advance(store.budget.interval_seconds)  # a request slot frees while the probe is on its way
        steps_meanwhile.append(other_worker.step())
        raise CareCycleAuthError("careCycle 401 UNAUTHORIZED: bad key", 401)

    carecycle.script.append(slow_refusal)
    clock.advance(settings.leadrelay_pause_probe_seconds)
    deliverer.step()

    assert steps_meanwhile == [Idle()]
    assert [len(batch) for batch in carecycle.batches] == [200, 200]  # the first batch, then one probe


def test_the_halves_of_a_split_batch_wait_unsent_once_delivery_pauses(store, cipher, clock, deliverer, carecycle):
    ids = admit(store, cipher, clock, count=4)
    carecycle.script += [
        CareCycleRequestError("careCycle 400 BAD_REQUEST", status=400),  # the batch is split in halves
        CareCycleAuthError("careCycle 401 UNAUTHORIZED: key revoked", 401),  # the first half: delivery pauses
    ]

    deliverer.step()

    assert [len(batch) for batch in carecycle.batches] == [4, 2]  # the second half is not sent into the pause
    assert store.pause.get() is not None
    assert [status_of(store, i) for i in ids] == [LeadStatus.QUEUED] * 4
    assert store.batches.in_flight() == 0


def test_a_probe_careCycle_refuses_for_one_record_ends_the_pause_and_isolates_that_record(
    store, cipher, clock, deliverer, carecycle, settings
):
    ids = admit(store, cipher, clock, count=4)
    bad = ids[2]
    carecycle.script.append(CareCycleAuthError("careCycle 401 UNAUTHORIZED: bad key", 401))
    deliverer.step()
    assert store.pause.get() is not None

    def refuse_batches_with_bad(batch: list[dict[str, Any]]) -> UploadResult:
        if any(r["externalId"] == bad for r in batch):
            raise CareCycleRequestError("careCycle 400 BAD_REQUEST: malformed", status=400)
        return UploadResult(succeeded=len(batch))

    carecycle.script.extend([refuse_batches_with_bad] * 5)
    clock.advance(settings.leadrelay_pause_probe_seconds)
    deliverer.step()

    assert store.pause.get() is None  # careCycle took the key: the 400 is the record's fault
    assert status_of(store, bad) is LeadStatus.REJECTED
    assert all(status_of(store, i) is LeadStatus.DELIVERED for i in ids if i != bad)


def test_delivery_returns_a_batch_to_the_queue_when_its_worker_vanished(
    store, cipher, clock, deliverer, carecycle, settings
):
    ids = admit(store, cipher, clock, count=2)
    store.batches.claim(clock.now(), 200, settings.leadrelay_visibility_timeout_seconds)  # a worker that died
    assert isinstance(deliverer.step(), Idle)

    clock.advance(settings.leadrelay_visibility_timeout_seconds + 1)
    assert deliverer.is_due()
    deliverer.step()

    assert carecycle.external_ids() == [ids]
    assert all(status_of(store, i) is LeadStatus.DELIVERED for i in ids)


def test_leads_taken_back_from_a_lost_batch_keep_their_place_ahead_of_newer_leads(
    store, cipher, clock, deliverer, carecycle, settings
):
    older = admit(store, cipher, clock, count=2)
    store.batches.claim(clock.now(), 200, settings.leadrelay_visibility_timeout_seconds)  # a worker that died
    clock.advance(5)
    newer = admit(store, cipher, clock, count=2)
    clock.advance(settings.leadrelay_visibility_timeout_seconds)

    deliverer.step()

    assert carecycle.external_ids() == [older + newer]


def test_a_batch_whose_delivery_keeps_dying_in_flight_ends_dead_at_the_maximum_age(
    store, cipher, clock, carecycle, settings
):
    settings = dataclasses.replace(settings, leadrelay_max_age_hours=1.0)
    deliverer = Deliverer(store, carecycle, cipher, settings, clock, random.Random(7))  # type: ignore[arg-type]
    [lead_id] = admit(store, cipher, clock)

    def dies(batch: list[dict[str, Any]]) -> UploadResult:
        raise RuntimeError("worker lost mid-upload")

    rounds = 0
    while rounds < 100_000:
        carecycle.script[:] = [dies]
        try:
            deliverer.step()  # reclaims the last round's batch, then sends the lead again unless it is dead
        except RuntimeError:
            rounds += 1
            clock.advance(settings.leadrelay_visibility_timeout_seconds + 1)
            continue
        break

    lead = store.leads.get(lead_id)
    assert lead.status is LeadStatus.DEAD
    assert lead.error is not None and lead.error.startswith("gave up after maximum age: batch ")
    age = settings.leadrelay_max_age_hours * 3600
    assert lead.attempts == rounds and rounds <= age / (settings.leadrelay_visibility_timeout_seconds + 1) + 1
    assert lead.updated_at - lead.received_at >= age  # not given up a moment sooner
    assert store.batches.depth() == 0 and store.batches.in_flight() == 0


def test_delivery_sends_a_repeated_external_id_in_a_later_batch(store, cipher, clock, deliverer, carecycle):
    first = make_lead(
        external_id="crm-1", record={"phoneNumber": "+12125550101", "postalCode": "10001", "externalId": "crm-1"}
    )
    second = make_lead(
        external_id="crm-1", record={"phoneNumber": "+12125550102", "postalCode": "10001", "externalId": "crm-1"}
    )
    store.leads.admit([first, second], [cipher.seal(first.record), cipher.seal(second.record)], clock.now())

    deliverer.step()
    next_slot(clock, store)
    deliverer.step()

    assert carecycle.external_ids() == [["crm-1"], ["crm-1"]]
    assert status_of(store, first.id) is LeadStatus.DELIVERED and status_of(store, second.id) is LeadStatus.DELIVERED


def test_many_leads_sharing_one_external_id_do_not_hold_up_the_rest_of_the_queue(
    store, cipher, clock, deliverer, carecycle
):
    admit(store, cipher, clock, 250, external_id="crm-7")
    clock.advance(1)
    others = admit(store, cipher, clock, 150)
    clock.advance(1)

    for _ in range(3):
        deliverer.step()
        next_slot(clock, store)

    assert all(status_of(store, lead_id) is LeadStatus.DELIVERED for lead_id in others)
    assert [len(batch) for batch in carecycle.batches[:2]] == [1, 151]


def test_delivery_pauses_rather_than_losing_leads_it_cannot_decrypt(store, clock, deliverer, carecycle, settings):
    lead = make_lead()
    from app.crypto import RecordCipher, generate_key

    store.leads.admit([lead], [RecordCipher(generate_key()).seal(lead.record)], clock.now())

    deliverer.step()

    assert carecycle.batches == []
    assert "LEADRELAY_ENCRYPTION_KEY" in store.pause.get().reason
    assert status_of(store, lead.id) is LeadStatus.QUEUED
    # Its lead is back in the queue: no batch is left in flight for /v1/stats to show until the visibility timeout.
    assert store.batches.in_flight() == 0


def test_unused_slot_is_given_back(store, clock):
    slot = store.budget.reserve(clock.now())
    assert isinstance(slot, Slot)
    assert store.budget.release(slot)
    assert isinstance(store.budget.reserve(clock.now()), Slot)


def test_a_slot_is_not_given_back_once_a_later_one_was_reserved(store, clock):
    first = store.budget.reserve(clock.now())
    clock.advance(store.budget.interval_seconds)
    later = store.budget.reserve(clock.now())  # another worker's, sent
    assert isinstance(first, Slot) and isinstance(later, Slot)

    assert not store.budget.release(first)
    assert store.budget.reserve(clock.now()) == pytest.approx(store.budget.interval_seconds)


def test_no_request_slot_frees_before_its_interval_has_passed(store, clock):
    interval = store.budget.interval_seconds
    assert isinstance(store.budget.reserve(clock.now()), Slot)

    clock.advance(interval / 2)
    assert store.budget.reserve(clock.now()) == pytest.approx(interval / 2)
    clock.advance(interval / 2 - 0.01)
    assert store.budget.reserve(clock.now()) == pytest.approx(0.01)
    clock.advance(0.01)
    assert isinstance(store.budget.reserve(clock.now()), Slot)


def test_workers_reserving_as_fast_as_they_may_never_send_more_than_the_limit_in_any_minute(store, clock, settings):
    sent = []
    for _ in range(3000):  # two minutes in steps of 40 ms, every step a worker asking for a slot
        if isinstance(store.budget.reserve(clock.now()), Slot):
            sent.append(clock.now())
        clock.advance(0.04)

    busiest = max(sum(1 for t in sent if start <= t <= start + 60) for start in sent)
    limit = settings.carecycle_rate_limit_per_min
    assert limit - 3 <= busiest <= limit  # nearly the whole budget is used, never more


def test_delivery_stops_only_the_leads_it_cannot_decrypt_and_sends_the_rest(store, cipher, clock, deliverer, carecycle):
    from app.crypto import RecordCipher, generate_key

    good, lost = make_lead(), make_lead()
    sealed = [cipher.seal(good.record), RecordCipher(generate_key()).seal(lost.record)]
    store.leads.admit([good, lost], sealed, clock.now())

    deliverer.step()

    assert carecycle.external_ids() == [[good.id]]
    assert status_of(store, good.id) is LeadStatus.DELIVERED
    unreadable = store.leads.get(lost.id)
    assert unreadable.status is LeadStatus.DEAD and "LEADRELAY_ENCRYPTION_KEY" in unreadable.error
    assert store.pause.get() is None


@pytest.mark.parametrize("index", [2, 99, -1], ids=["just-past-the-batch", "far-past-it", "negative"])
def test_delivery_halves_a_batch_when_a_422_names_no_record_of_it(store, cipher, clock, deliverer, carecycle, index):
    ids = admit(store, cipher, clock, count=2)
    carecycle.script.append(CareCycleValidationError("careCycle 422", {index: f"records.{index}: bad"}))

    deliverer.step()

    assert [len(batch) for batch in carecycle.batches] == [2, 1, 1]
    assert all(status_of(store, i) is LeadStatus.DELIVERED for i in ids)


def test_a_batch_careCycle_answered_is_settled_once_redis_answers_again(
    store, cipher, clock, deliverer, carecycle, monkeypatch
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    ids = admit(store, cipher, clock, count=3)
    settle, failures = store.batches.settle, [RedisConnectionError("down")] * 2

    def settle_when_redis_is_back(*args: Any, **kwargs: Any) -> int:
        if failures:
            raise failures.pop()
        return settle(*args, **kwargs)

    def metrics_down(*args: Any, **kwargs: Any) -> None:
        raise RedisConnectionError("down")

    monkeypatch.setattr(store.batches, "settle", settle_when_redis_is_back)
    monkeypatch.setattr(store.metrics, "record_upload", metrics_down)  # the numbers may be lost, not the leads

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.DELIVERED] * 3
    assert len(carecycle.batches) == 1 and store.batches.in_flight() == 0


def test_a_batch_whose_settling_redis_never_answers_is_left_to_its_lease(
    store, cipher, clock, deliverer, carecycle, monkeypatch
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    admit(store, cipher, clock)

    def redis_down(*args: Any, **kwargs: Any) -> int:
        raise RedisConnectionError("down")

    monkeypatch.setattr(store.batches, "settle", redis_down)
    started = clock.now()

    with pytest.raises(RedisConnectionError):
        deliverer.step()

    assert clock.now() - started <= deliverer._settings.leadrelay_visibility_timeout_seconds / 2


def test_a_batch_waiting_out_retry_after_in_a_split_keeps_its_lease(store, cipher, clock, deliverer, carecycle):
    ids = admit(store, cipher, clock, count=4)
    carecycle.script += [
        CareCycleRequestError("careCycle 400 BAD_REQUEST", status=400),  # the batch is split in halves
        CareCycleRateLimitedError("careCycle 429", retry_after=150.0),  # first half: wait longer than the lease
        UploadResult(succeeded=2),  # second half, once the wait is over
    ]
    sleep, taken_for_lost = clock.sleep, []

    def sleep_while_another_worker_looks(seconds: float) -> None:
        sleep(seconds)
        taken_for_lost.append(store.batches.reclaim_stale(clock.now(), 72 * 3600))

    clock.sleep = sleep_while_another_worker_looks

    deliverer.step()

    assert len(taken_for_lost) > 1 and set(taken_for_lost) == {0}  # slept in pieces, the lease kept each time
    assert [status_of(store, i) for i in ids[2:]] == [LeadStatus.DELIVERED] * 2
    assert carecycle.external_ids()[1:] == [ids[:2], ids[2:]]  # each half sent once, by this worker


def _admit_from_sources(store, cipher, clock, *source_ids):
    leads = [make_lead(id=f"src{index}", record=make_record(sourceId=sid, externalId=f"src{index}"))
             for index, sid in enumerate(source_ids)]  # fmt: skip
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    return [lead.id for lead in leads]


def _unknown_source(source_id):
    def answer(batch):
        if any(record.get("sourceId") == source_id for record in batch):
            raise CareCycleNotFoundError("careCycle 404 NOT_FOUND: Source not found", 404, coded=True)
        return UploadResult(succeeded=len(batch))

    return answer


def test_a_404_for_one_unknown_source_id_refuses_its_leads_and_delivers_the_other_sources(
    store, cipher, clock, deliverer, carecycle
):
    ids = _admit_from_sources(store, cipher, clock, "bad-src", "good-src", "good-src")
    carecycle.script += [_unknown_source("bad-src")] * 4

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.REJECTED, LeadStatus.DELIVERED, LeadStatus.DELIVERED]
    assert "not sourceId 'bad-src'" in store.leads.get(ids[0]).error
    assert store.pause.get() is None
    # Its first 404 came before careCycle read the other source: it is asked again once careCycle has.
    assert [len(batch) for batch in carecycle.batches] == [3, 1, 2, 1]


def test_a_source_answered_404_before_carecycle_read_any_other_is_asked_again_not_refused(
    store, cipher, clock, deliverer, carecycle
):
    # careCycle answers 404 to everything for a moment (its own NOT_FOUND), then recovers while the batch is
    # sent source by source: the first source's 404 came before careCycle read anything, so it says nothing
    # about that source.
    ids = _admit_from_sources(store, cipher, clock, "a-src", "b-src")
    carecycle.script += [CareCycleNotFoundError("careCycle 404 NOT_FOUND: Not found", 404, coded=True)] * 2

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.DELIVERED, LeadStatus.DELIVERED]
    assert carecycle.external_ids() == [ids, ids[:1], ids[1:], ids[:1]]
    assert store.pause.get() is None
    assert sum(store.metrics.read().carecycle_requests.values()) == 4  # every request counted, once


def test_a_404_for_every_source_of_a_batch_pauses_delivery_as_a_wrong_url(store, cipher, clock, deliverer, carecycle):
    ids = _admit_from_sources(store, cipher, clock, "a-src", "b-src")
    carecycle.script += [CareCycleNotFoundError("careCycle 404 NOT_FOUND: Not found", 404, coded=True)] * 3

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.QUEUED, LeadStatus.QUEUED]
    assert store.pause.get() is not None
    assert [len(batch) for batch in carecycle.batches] == [2, 1, 1]


def test_a_probe_split_by_source_ends_a_pause_one_unknown_source_id_held(store, cipher, clock, deliverer, carecycle):
    ids = _admit_from_sources(store, cipher, clock, "bad-src", "good-src")
    store.pause.pause("careCycle 404 NOT_FOUND: Source not found", clock.now() - 60, clock.now())
    carecycle.script += [_unknown_source("bad-src")] * 4

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.REJECTED, LeadStatus.DELIVERED]
    assert store.pause.get() is None


def test_a_wrong_url_costs_a_batch_of_many_sources_three_requests_more_then_pauses(
    store, cipher, clock, deliverer, carecycle
):
    ids = _admit_from_sources(store, cipher, clock, "a-src", "b-src", "c-src", "d-src", "e-src")
    carecycle.script += [CareCycleNotFoundError("careCycle 404", 404)] * 6

    deliverer.step()

    assert [len(batch) for batch in carecycle.batches] == [5, 1, 1, 1]
    assert {status_of(store, i) for i in ids} == {LeadStatus.QUEUED}
    assert store.pause.get() is not None


def test_a_404_that_is_not_carecycles_own_beside_a_source_it_took_is_retried_not_refused(
    store, cipher, clock, deliverer, carecycle
):
    ids = _admit_from_sources(store, cipher, clock, "bad-src", "good-src")

    def proxy_404_for(batch):
        if any(record.get("sourceId") == "bad-src" for record in batch):
            raise CareCycleNotFoundError("careCycle 404", 404)
        return UploadResult(succeeded=len(batch))

    carecycle.script += [proxy_404_for] * 4

    deliverer.step()

    assert [status_of(store, i) for i in ids] == [LeadStatus.RETRYING, LeadStatus.DELIVERED]
    assert store.pause.get() is None


def _lead_lines(caplog) -> dict[str, str]:
    """Each lead id the delivery log names (alone as `lead_id`, or in a line's `lead_ids`), with its line."""
    lines = {}
    for record in (r for r in caplog.records if r.name == "workers.delivery"):
        for lead_id in [getattr(record, "lead_id", None), *getattr(record, "lead_ids", [])]:
            if lead_id is not None:
                lines[lead_id] = record.getMessage()
    return lines


def _delivery_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "workers.delivery" and r.levelno == logging.WARNING]


def test_a_lead_given_up_at_the_maximum_age_is_logged_by_its_id(
    store, cipher, clock, deliverer, carecycle, settings, caplog
):
    [lead_id] = admit(store, cipher, clock)
    clock.advance(settings.leadrelay_max_age_hours * 3600)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    assert _lead_lines(caplog) == {lead_id: "1 lead given up after the maximum age: careCycle 503"}


def test_leads_given_up_at_the_maximum_age_together_take_one_line_naming_every_one(
    store, cipher, clock, deliverer, carecycle, settings, caplog
):
    ids = admit(store, cipher, clock, count=150)
    clock.advance(settings.leadrelay_max_age_hours * 3600)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    given_up = [w for w in _delivery_warnings(caplog) if "maximum age" in w]
    assert given_up == ["150 leads given up after the maximum age: careCycle 503"]
    assert _lead_lines(caplog) == dict.fromkeys(ids, given_up[0])


def test_each_record_a_422_refuses_is_logged_by_its_lead_id(store, cipher, clock, deliverer, carecycle, caplog):
    ids = admit(store, cipher, clock, count=3)
    carecycle.script.append(CareCycleValidationError("careCycle 422", {0: "phoneNumber: bad", 2: "email: bad"}))

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    assert _lead_lines(caplog) == dict.fromkeys([ids[0], ids[2]], "careCycle refused 2 records of a batch")


def test_records_a_200_answer_refuses_take_one_line_naming_every_lead(
    store, cipher, clock, deliverer, carecycle, caplog
):
    ids = admit(store, cipher, clock, count=120)

    def refuse_all_but_the_first(batch):
        failures = {record["externalId"]: "phoneNumber: not a number careCycle takes" for record in batch[1:]}
        return UploadResult(succeeded=1, failed=len(failures), failures=failures)

    carecycle.script.append(refuse_all_but_the_first)

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    assert [w for w in _delivery_warnings(caplog) if "refused" in w] == ["careCycle refused 119 records of a batch"]
    assert _lead_lines(caplog) == dict.fromkeys(ids[1:], "careCycle refused 119 records of a batch")


def test_a_200_answer_counting_more_failures_than_it_names_is_logged_with_how_many_leads_are_retried(
    store, cipher, clock, deliverer, carecycle, caplog
):
    admit(store, cipher, clock, count=3)
    carecycle.script.append(UploadResult(succeeded=0, failures={"ext-unknown": "bad"}, failed=3))

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    [line] = [r for r in caplog.records if r.getMessage() == "careCycle reported 3 failed records but named 1"]
    assert (line.levelname, line.records, line.retried) == ("WARNING", 3, 3)


def test_a_200_answer_naming_every_failure_it_counts_logs_no_mismatch(
    store, cipher, clock, deliverer, carecycle, caplog
):
    ids = admit(store, cipher, clock, count=2)
    carecycle.script.append(UploadResult(succeeded=1, failures={ids[1]: "bad"}, failed=1))

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    assert not [w for w in _delivery_warnings(caplog) if "but named" in w]


def test_leads_returned_from_a_batch_left_in_flight_are_logged(store, cipher, clock, deliverer, settings, caplog):
    admit(store, cipher, clock, count=2)
    store.batches.claim(clock.now(), 200, settings.leadrelay_visibility_timeout_seconds)  # a worker that died
    clock.advance(settings.leadrelay_visibility_timeout_seconds + 1)

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()

    lines = [r.getMessage() for r in caplog.records if r.name == "workers.delivery" and r.levelno == logging.WARNING]
    assert lines == ["took back 2 leads of batches left in flight past the visibility timeout (worker gone or stalled)"]


def test_leads_retrying_through_an_outage_go_out_as_soon_as_carecycle_answers_again_oldest_first(
    store, cipher, clock, carecycle, settings
):
    slow_retries = settings.replace(leadrelay_retry_base_seconds=30.0)
    deliverer = Deliverer(store, carecycle, cipher, slow_retries, clock, random.Random(7))  # type: ignore[arg-type]
    [oldest] = admit(store, cipher, clock)
    outage = CareCycleTransientError("careCycle 503 SERVICE_UNAVAILABLE", 503)
    carecycle.script += [outage, outage, outage]
    deliverer.step()  # the oldest fails once...
    clock.advance(max(store.leads.get(oldest).next_attempt_at - clock.now(), store.budget.interval_seconds))
    [older] = admit(store, cipher, clock)
    deliverer.step()  # ...and again (a newer one is not sent with a lead careCycle failed)...
    clock.advance(store.budget.interval_seconds + 0.01)
    deliverer.step()  # ...and the newer one fails once: the oldest's backoff is now the longer, so it is due last
    assert carecycle.external_ids() == [[oldest], [oldest], [older]]
    assert store.leads.get(oldest).next_attempt_at > store.leads.get(older).next_attempt_at > clock.now() + 10
    clock.advance(store.budget.interval_seconds + 0.01)
    [newest] = admit(store, cipher, clock)

    deliverer.step()  # careCycle takes the newest: it is back
    clock.advance(store.budget.interval_seconds + 0.01)
    step = deliverer.step()

    assert isinstance(step, Sent)  # not Idle until each backoff runs out
    assert carecycle.external_ids()[-2:] == [[newest], [oldest, older]]
    assert {status_of(store, i) for i in (oldest, older, newest)} == {LeadStatus.DELIVERED}
    assert "careCycle answers again" in [e.detail for e in store.leads.get(oldest).events]


def test_a_retrying_backlog_is_made_due_by_one_worker_once_per_recovery(store, cipher, clock, deliverer, carecycle):
    ids = admit(store, cipher, clock, count=3)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
    deliverer.step()
    store.outage.failing("careCycle 503", clock.now())

    assert store.outage.recovered(clock.now(), chunk=2) == 3  # in steps of 2, all of them
    assert store.outage.recovered(clock.now(), chunk=2) is None  # another worker, or the next answer: nothing to do
    assert {status_of(store, i) for i in ids} == {LeadStatus.QUEUED}
    assert store.batches.has_due_work(clock.now())


def test_a_rate_limit_is_not_taken_for_carecycle_failing(store, cipher, clock, deliverer, carecycle):
    admit(store, cipher, clock)
    carecycle.script.append(CareCycleRateLimitedError("careCycle 429 RATE_LIMIT_EXCEEDED", retry_after=30))

    deliverer.step()

    assert store.outage.get() is None  # careCycle answered: the relay's turn is what waits, not an outage


def _failure_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "workers.delivery" and r.levelno >= logging.WARNING]


def test_an_outage_is_logged_when_it_starts_or_changes_and_recalled_once_a_minute_not_once_per_upload(
    store, cipher, clock, deliverer, carecycle, caplog
):
    down = CareCycleTransientError("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", 503)
    carecycle.script += [down] * 31 + [CareCycleTransientError("careCycle timed out", None)]

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        for _ in range(31):  # uploads failing alike every 2 s (a lead arriving each time) for a minute
            admit(store, cipher, clock)
            deliverer.step()
            clock.advance(2.0)
        admit(store, cipher, clock)
        deliverer.step()  # a new fault is said at once

    assert _failure_lines(caplog) == [
        "upload failed, will retry: careCycle 503 SERVICE_UNAVAILABLE: Service unavailable",
        "uploads still failing, retried with backoff: careCycle 503 SERVICE_UNAVAILABLE: Service unavailable"
        " (30 more uploads failed alike in 60 s)",
        "upload failed, will retry: careCycle timed out",
    ]


def test_an_upload_taken_after_failures_ends_the_quiet_so_the_next_failure_is_said_at_once(
    store, cipher, clock, deliverer, carecycle, caplog
):
    down = CareCycleTransientError("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", 503)
    carecycle.script += [down, UploadResult(succeeded=1), down]

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        for _ in range(3):
            admit(store, cipher, clock)
            deliverer.step()
            clock.advance(2.0)

    said = "upload failed, will retry: careCycle 503 SERVICE_UNAVAILABLE: Service unavailable"
    assert _failure_lines(caplog) == [said, said]


def _pause_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "workers.delivery" and r.levelno >= logging.INFO and "delivery" in r.getMessage()
    ]


def test_a_pause_is_said_when_it_starts_or_its_reason_changes_and_recalled_once_a_minute_not_at_every_probe(
    store, cipher, clock, carecycle, settings, caplog
):
    settings = settings.replace(leadrelay_pause_probe_seconds=30.0)
    deliverer = Deliverer(store, carecycle, cipher, settings, clock, random.Random(7))  # type: ignore[arg-type]
    admit(store, cipher, clock)
    revoked = CareCycleAuthError("careCycle 401 UNAUTHORIZED: key revoked", 401)
    carecycle.script += [revoked] * 5 + [CareCycleAuthError("careCycle 403 FORBIDDEN: not allowed", 403)]

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()  # delivery pauses
        for _ in range(5):  # a probe every 30 s: four refused alike, then one refused for a new reason
            clock.advance(settings.leadrelay_pause_probe_seconds)
            deliverer.step()
        clock.advance(settings.leadrelay_pause_probe_seconds)
        deliverer.step()  # careCycle takes the probe

    assert _pause_lines(caplog) == [
        "delivery paused: careCycle 401 UNAUTHORIZED: key revoked",
        "delivery still paused: careCycle 401 UNAUTHORIZED: key revoked (2 more probes failed alike in 60 s)",
        "delivery still paused: careCycle 401 UNAUTHORIZED: key revoked (2 more probes failed alike in 60 s)",
        "delivery paused: careCycle 403 FORBIDDEN: not allowed",
        "delivery resumed: careCycle accepts the configuration again",
    ]


def test_a_new_pause_is_said_at_once_even_for_the_reason_of_one_said_a_moment_ago(
    store, cipher, clock, deliverer, carecycle, settings, caplog
):
    revoked = CareCycleAuthError("careCycle 401 UNAUTHORIZED: key revoked", 401)
    other_worker = Deliverer(store, carecycle, cipher, settings, clock, random.Random(8))  # type: ignore[arg-type]
    carecycle.script += [revoked, UploadResult(succeeded=1), revoked]

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        admit(store, cipher, clock)
        deliverer.step()  # delivery pauses
        clock.advance(settings.leadrelay_pause_probe_seconds)
        other_worker.step()  # another worker's probe ends the pause
        admit(store, cipher, clock)
        clock.advance(store.budget.interval_seconds)
        deliverer.step()  # and this worker's next upload starts a new one

    assert _pause_lines(caplog) == [
        "delivery paused: careCycle 401 UNAUTHORIZED: key revoked",
        "delivery resumed: careCycle accepts the configuration again",
        "delivery paused: careCycle 401 UNAUTHORIZED: key revoked",
    ]


def test_a_pause_longer_than_the_maximum_age_leaves_its_leads_waiting_not_dead(
    store, cipher, clock, deliverer, carecycle, settings
):
    [lead_id] = admit(store, cipher, clock)
    carecycle.script.append(CareCycleAuthError("careCycle 401 UNAUTHORIZED: key revoked", 401))
    deliverer.step()
    clock.advance(settings.leadrelay_max_age_hours * 3600 + 1)
    carecycle.script.append(CareCycleAuthError("careCycle 401 UNAUTHORIZED: key revoked", 401))
    deliverer.step()  # a probe, refused: still paused
    assert status_of(store, lead_id) is LeadStatus.QUEUED

    clock.advance(settings.leadrelay_pause_probe_seconds)
    deliverer.step()  # the new key works

    assert status_of(store, lead_id) is LeadStatus.DELIVERED


def test_the_worker_that_ends_an_outage_says_so_once_with_the_leads_it_made_due(
    store, cipher, clock, carecycle, settings, caplog
):
    slow_retries = settings.replace(leadrelay_retry_base_seconds=30.0)
    deliverer = Deliverer(store, carecycle, cipher, slow_retries, clock, random.Random(7))  # type: ignore[arg-type]
    ids = admit(store, cipher, clock, count=2)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
    deliverer.step()
    clock.advance(store.budget.interval_seconds + 0.01)
    admit(store, cipher, clock)

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()  # careCycle takes the newest
        store.outage.failing("careCycle timed out", clock.now())  # another worker's upload, timed out meanwhile
        clock.advance(store.budget.interval_seconds + 0.01)
        deliverer.step()  # the two made due go out, and end that spell too

    said = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert said == ["careCycle answers again: 2 retrying leads are due now, oldest first", "careCycle answers again"]
    assert {status_of(store, i) for i in ids} == {LeadStatus.DELIVERED}


def test_retrying_leads_a_redis_error_kept_from_being_made_due_are_made_due_by_the_next_answer(
    store, cipher, clock, deliverer, carecycle, monkeypatch
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    ids = admit(store, cipher, clock, count=3)
    carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
    deliverer.step()
    release = store.outage._scripts.release_retrying
    calls = []

    def fail_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RedisConnectionError("connection lost")
        return release(*args, **kwargs)

    scripts = dataclasses.replace(store.outage._scripts, release_retrying=fail_the_second_chunk)
    monkeypatch.setattr(store.outage, "_scripts", scripts)
    with pytest.raises(RedisConnectionError):
        store.outage.recovered(clock.now(), chunk=2)  # careCycle answered; Redis cut the release short

    assert store.outage.get() is not None  # still to finish: the next answer does
    assert store.outage.recovered(clock.now(), chunk=2) == 1
    assert {status_of(store, i) for i in ids} == {LeadStatus.QUEUED}
    assert store.outage.get() is None and store.outage.recovered(clock.now(), chunk=2) is None


def test_a_lead_through_many_transitions_keeps_its_last_20_events_newest_first(
    store, cipher, clock, deliverer, carecycle
):
    admitted_at = clock.now()
    [lead_id] = admit(store, cipher, clock)
    for _ in range(12):  # each failed attempt records sending and retrying, each retry after the first also queued
        carecycle.script.append(CareCycleTransientError("careCycle 503", 503))
        deliverer.step()
        clock.advance(max(store.leads.get(lead_id).next_attempt_at - clock.now(), store.budget.interval_seconds))
    deliverer.step()

    events = store.leads.get(lead_id).events
    assert len(events) == 20
    assert events[0].status is LeadStatus.DELIVERED
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)
    assert events[-1].at > admitted_at  # the oldest, its admission among them, make way for the newest
