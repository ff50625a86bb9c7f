"""The Meta retrieval scripts (admit as `fetching`, complete, defer, claim due) on a real Redis."""

from __future__ import annotations

from app.models import LeadStatus
from app.store import keys
from app.store.fetches import FETCH_LEASE_SECONDS, Completion
from tests.factories import make_lead

PHONE = "+12125550142"


def admit_fetching(store, clock, **overrides):
    lead = make_lead(
        record={},
        external_id="",
        phone_masked="",
        status=LeadStatus.FETCHING,
        extra_fields={"meta_leadgen_id": "900000000000001", "meta_form_id": "200000000000001"},
        **overrides,
    )
    [admitted] = store.leads.admit([lead], [""], clock.now())
    return lead, admitted


def queued(cipher, **overrides):
    values = {"sealed_record": cipher.seal({"phoneNumber": PHONE}), "external_id": "x1", "phone_masked": "+1******0142"}
    values.update(overrides)
    return Completion(LeadStatus.QUEUED, "retrieved from the Graph API", **values)


def test_a_fetching_lead_is_stored_without_a_record_outside_the_ready_set(store, clock):
    lead, admitted = admit_fetching(store, clock, idempotency_key="leadgen:1")
    again = make_lead(status=LeadStatus.FETCHING, record={}, idempotency_key="leadgen:1")
    [repeat] = store.leads.admit([again], [""], clock.now())

    assert (admitted.status, repeat.id, repeat.repeated) == (LeadStatus.FETCHING, lead.id, True)
    assert not store.redis.hexists(keys.lead_key(lead.id), "record")
    assert store.redis.hget(keys.lead_key(lead.id), "meta_leadgen_id") == b"900000000000001"
    assert store.redis.zscore(keys.fetching_key(), lead.id) == clock.now() + FETCH_LEASE_SECONDS
    assert store.batches.depth() == 0 and store.leads.status_counts()[LeadStatus.FETCHING] == 1


def test_claim_skips_a_fetching_lead_even_if_it_reached_the_ready_set(store, clock):
    lead, _ = admit_fetching(store, clock)
    store.redis.zadd(keys.ready_key(), {lead.id: clock.now()})

    assert store.batches.claim(clock.now(), 200, 30) is None
    assert store.leads.get(lead.id).status is LeadStatus.FETCHING


def test_complete_queues_a_fetching_lead_once_with_its_record(store, cipher, clock):
    lead, _ = admit_fetching(store, clock)
    clock.advance(5)

    assert store.fetches.complete(lead.id, queued(cipher), clock.now()) is LeadStatus.QUEUED
    assert store.fetches.complete(lead.id, queued(cipher), clock.now()) is None

    stored = store.leads.get(lead.id)
    assert (stored.status, stored.external_id, stored.phone_masked, stored.updated_at) == (
        LeadStatus.QUEUED,
        "x1",
        "+1******0142",
        clock.now(),
    )
    assert [e.status for e in stored.events] == [LeadStatus.QUEUED, LeadStatus.FETCHING]
    counts = store.leads.status_counts()
    assert (counts[LeadStatus.FETCHING], counts[LeadStatus.QUEUED]) == (0, 1)
    assert store.fetches.waiting() == 0
    [claimed] = store.batches.claim(clock.now(), 200, 30).leads
    assert cipher.open(claimed.sealed_record) == {"phoneNumber": PHONE}


def test_complete_applies_the_person_window_like_admission(store, cipher, clock):
    window = {"person": PHONE, "person_memory_seconds": 86400, "duplicate_window_seconds": 3600}
    first, _ = admit_fetching(store, clock)
    second, _ = admit_fetching(store, clock)

    statuses = [store.fetches.complete(lead.id, queued(cipher, **window), clock.now()) for lead in (first, second)]

    assert statuses == [LeadStatus.QUEUED, LeadStatus.DUPLICATE]
    assert store.batches.depth() == 1


def test_complete_rejects_without_a_record_and_counts_a_failure(store, clock):
    lead, _ = admit_fetching(store, clock)
    reason = "the Graph API has no such lead"

    status = store.fetches.complete(lead.id, Completion(LeadStatus.REJECTED, reason, error=reason), clock.now())

    assert status is LeadStatus.REJECTED
    assert store.leads.get(lead.id).error == reason
    assert not store.redis.hexists(keys.lead_key(lead.id), "record")
    assert store.redis.get(keys.failed_bucket_key(int(clock.now() // 60))) == b"1"


def test_defer_sets_the_next_try_and_the_reason_and_counts_only_failures(store, clock):
    lead, _ = admit_fetching(store, clock)

    assert store.fetches.defer(lead.id, clock.now(), clock.now() + 30, "Graph API 503", count_attempt=True)
    assert store.fetches.defer(lead.id, clock.now(), clock.now() + 60, "retrieval paused: x", count_attempt=False)

    stored = store.leads.get(lead.id)
    assert (stored.status, stored.error, stored.next_attempt_at) == (
        LeadStatus.FETCHING,
        "retrieval paused: x",
        clock.now() + 60,
    )
    assert store.redis.hget(keys.lead_key(lead.id), "fetch_attempts") == b"1"
    assert store.redis.zscore(keys.fetching_key(), lead.id) == clock.now() + 60


def test_defer_leaves_a_lead_that_is_no_longer_fetching_and_drops_it_from_the_set(store, cipher, clock):
    lead, _ = admit_fetching(store, clock)
    store.fetches.complete(lead.id, queued(cipher), clock.now())
    store.redis.zadd(keys.fetching_key(), {lead.id: clock.now()})

    assert store.fetches.defer(lead.id, clock.now(), clock.now() + 30, "late", count_attempt=True) is False
    assert store.leads.get(lead.id).status is LeadStatus.QUEUED and store.fetches.waiting() == 0


def test_claim_due_takes_each_due_lead_once_per_lease(store, clock):
    due, _ = admit_fetching(store, clock)
    later, _ = admit_fetching(store, clock)
    store.fetches.defer(later.id, clock.now(), clock.now() + 10 * FETCH_LEASE_SECONDS, "wait", count_attempt=True)
    clock.advance(FETCH_LEASE_SECONDS)

    assert store.fetches.claim_due(clock.now(), 100) == {due.id: clock.now() + FETCH_LEASE_SECONDS}
    assert store.fetches.claim_due(clock.now(), 100) == {}
    assert store.redis.zscore(keys.fetching_key(), due.id) == clock.now() + FETCH_LEASE_SECONDS


def test_begin_takes_a_lead_up_only_under_the_lease_its_job_was_queued_with(store, clock):
    lead, _ = admit_fetching(store, clock)
    queued_under = clock.now() + FETCH_LEASE_SECONDS  # a whole number: Redis answers its score as "1800000120"
    clock.advance(FETCH_LEASE_SECONDS)
    swept = store.fetches.claim_due(clock.now(), 100)[lead.id]
    clock.advance(1)

    assert store.fetches.begin(lead.id, clock.now(), queued_under) is None
    assert store.redis.zscore(keys.fetching_key(), lead.id) == swept  # left to the job that holds the lease
    ticket = store.fetches.begin(lead.id, clock.now(), swept)
    assert ticket is not None and ticket.leadgen_id == "900000000000001"
    assert store.redis.zscore(keys.fetching_key(), lead.id) == clock.now() + FETCH_LEASE_SECONDS
    assert store.fetches.begin(lead.id, clock.now(), swept) is None  # taken up: a second job with it stops too


def test_begin_under_a_lease_takes_up_no_lead_that_left_the_fetching_set(store, cipher, clock):
    lead, _ = admit_fetching(store, clock)
    lease = clock.now() + FETCH_LEASE_SECONDS
    store.fetches.complete(lead.id, queued(cipher), clock.now())

    assert store.fetches.begin(lead.id, clock.now(), lease) is None
    assert store.fetches.waiting() == 0 and store.leads.get(lead.id).status is LeadStatus.QUEUED


def test_the_retrieval_pause_is_separate_from_the_delivery_pause(store, clock):
    store.fetch_pause.pause("Graph API 400 OAuthException code 190", clock.now(), clock.now())

    assert store.pause.get() is None
    assert store.fetch_pause.take_probe(clock.now(), 10) and not store.fetch_pause.take_probe(clock.now(), 10)
    assert store.fetch_pause.resume() and store.fetch_pause.get() is None


def test_a_lead_retrieved_after_a_deferral_shows_no_next_attempt_time(store, cipher, clock):
    lead, _ = admit_fetching(store, clock)
    store.fetches.defer(lead.id, clock.now(), clock.now() + 30, "Graph API 503", count_attempt=True)
    clock.advance(30)

    store.fetches.complete(lead.id, queued(cipher), clock.now())

    stored = store.leads.get(lead.id)
    assert (stored.status, stored.next_attempt_at, stored.error) == (LeadStatus.QUEUED, None, None)


def test_defer_notes_each_failed_try_but_a_wait_for_the_same_reason_once(store, clock):
    lead, _ = admit_fetching(store, clock)

    for _ in range(2):
        store.fetches.defer(lead.id, clock.now(), clock.now() + 30, "Graph API 503", count_attempt=True)
    for _ in range(2):
        store.fetches.defer(lead.id, clock.now(), clock.now() + 60, "retrieval paused: x", count_attempt=False)

    details = [event.detail for event in store.leads.get(lead.id).events]
    assert details[:3] == ["retrieval paused: x", "Graph API 503", "Graph API 503"]
    assert len(details) == 4  # and the admission's
