"""Status and source indexes, retention sets, retries and purges, kept by the Lua scripts on a real Redis."""

from __future__ import annotations

import dataclasses

import pytest

from app.models import LeadStatus
from app.store import LeadNotFoundError, keys, retention
from app.store.batches import Outcome
from app.store.fetches import Completion
from app.store.index import Selection
from app.store.retention import PurgeReport
from app.store.retries import Adoption, RequeueOutcome
from tests.factories import make_lead
from tests.storecheck import assert_indexes_consistent, index_ids, leads_in

DAY = 86400


def retained(redis, key):
    return {member.decode(): score for member, score in redis.zrange(key, 0, -1, withscores=True)}


def test_admit_indexes_a_lead_by_status_and_source_at_its_receipt_time(store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.QUEUED, source="web")

    assert store.redis.zscore(keys.status_index_key("queued"), lead.id) == clock.now()
    assert store.redis.zscore(keys.source_index_key("web"), lead.id) == clock.now()
    assert store.redis.smembers(keys.sources_seen_key()) == {b"web"}
    assert retained(store.redis, keys.retained_leads_key()) == {}
    assert_indexes_consistent(store)


@pytest.mark.parametrize("status", [LeadStatus.SPAM, LeadStatus.TEST])
def test_admit_of_a_final_lead_enters_it_in_the_retention_sets(store, cipher, clock, status):
    [lead] = leads_in(store, cipher, clock, status)

    assert retained(store.redis, keys.retained_leads_key()) == {lead.id: clock.now()}
    assert retained(store.redis, keys.retained_records_key()) == {lead.id: clock.now()}
    assert_indexes_consistent(store)


def test_admit_of_a_duplicate_person_indexes_it_as_duplicate(store, cipher, clock):
    window = {"person": "+12125550142", "person_memory_seconds": DAY, "duplicate_window_seconds": 3600}
    first, again = make_lead(**window), make_lead(**window)
    for lead in (first, again):
        store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())

    assert index_ids(store.redis, keys.status_index_key("duplicate")) == [again.id]
    assert again.id in retained(store.redis, keys.retained_leads_key())
    assert_indexes_consistent(store)


def test_claim_settle_and_reclaim_move_leads_between_status_indexes(store, cipher, clock):
    received = clock.now()
    delivered, dead, stale = make_lead(), make_lead(), make_lead()
    store.leads.admit([delivered, dead, stale], [cipher.seal(x.record) for x in (delivered, dead, stale)], received)
    clock.advance(5)
    batch = store.batches.claim(clock.now(), 200, 1)
    assert set(index_ids(store.redis, keys.status_index_key("sending"))) == {delivered.id, dead.id, stale.id}
    assert_indexes_consistent(store)

    store.batches.settle(
        batch.id,
        [Outcome(delivered.id, LeadStatus.DELIVERED, "ok"), Outcome(dead.id, LeadStatus.DEAD, "gave up", error="503")],
        clock.now(),
        release=False,
    )
    clock.advance(5)
    assert store.batches.reclaim_stale(clock.now(), 3600) == 1

    assert index_ids(store.redis, keys.status_index_key("queued")) == [stale.id]
    assert store.redis.zscore(keys.status_index_key("delivered"), delivered.id) == received
    assert retained(store.redis, keys.retained_leads_key()) == {delivered.id: received + 5, dead.id: received + 5}
    assert_indexes_consistent(store)


@pytest.mark.parametrize(
    ("completion", "status"),
    [
        pytest.param(
            Completion(LeadStatus.QUEUED, "retrieved", sealed_record="sealed"), LeadStatus.QUEUED, id="queued"
        ),
        pytest.param(Completion(LeadStatus.DEAD, "graph gone", error="404"), LeadStatus.DEAD, id="dead"),
    ],
)
def test_complete_fetch_moves_a_fetching_lead_to_its_status_index(store, cipher, clock, completion, status):
    [lead] = leads_in(store, cipher, clock, LeadStatus.FETCHING, source="meta")
    clock.advance(3)

    assert store.fetches.complete(lead.id, completion, clock.now()) is status
    assert index_ids(store.redis, keys.status_index_key(status.value)) == [lead.id]
    assert (lead.id in retained(store.redis, keys.retained_leads_key())) is status.is_final
    assert_indexes_consistent(store)


def test_retry_requeues_only_failed_leads_with_a_record_and_reports_each(store, cipher, clock):
    [dead] = leads_in(store, cipher, clock, LeadStatus.DEAD)
    [rejected] = leads_in(store, cipher, clock, LeadStatus.REJECTED)
    [delivered] = leads_in(store, cipher, clock, LeadStatus.DELIVERED)
    [recordless] = leads_in(store, cipher, clock, LeadStatus.DEAD)
    store.redis.hdel(keys.lead_key(recordless.id), "record")
    store.redis.expire(keys.lead_key(dead.id), 1000)
    clock.advance(60)

    results = store.retries.requeue(
        [dead.id, rejected.id, delivered.id, recordless.id, "gone", f"{dead.id}:events"],
        clock.now(),
        "retried by alice",
    )

    assert [(r.outcome, r.previous) for r in results] == [
        (RequeueOutcome.REQUEUED, LeadStatus.DEAD),
        (RequeueOutcome.REQUEUED, LeadStatus.REJECTED),
        (RequeueOutcome.NOT_RETRYABLE, LeadStatus.DELIVERED),
        (RequeueOutcome.NO_RECORD, LeadStatus.DEAD),
        (RequeueOutcome.MISSING, None),
        (RequeueOutcome.MISSING, None),  # no lead's id: never looked up
    ]
    assert [r.lead_id for r in results][-1] == f"{dead.id}:events"
    requeued = store.leads.get(dead.id)
    assert (requeued.status, requeued.attempts, requeued.error, requeued.events[0].detail) == (
        LeadStatus.QUEUED,
        1,
        None,
        "retried by alice",
    )
    assert store.redis.zscore(keys.ready_key(), dead.id) == clock.now()
    assert store.redis.ttl(keys.lead_key(dead.id)) == -1
    assert set(retained(store.redis, keys.retained_leads_key())) == {delivered.id, recordless.id}
    assert_indexes_consistent(store)


def test_retry_by_id_takes_a_duplicate_back_and_a_bulk_step_leaves_it(store, cipher, clock):
    [duplicate] = leads_in(store, cipher, clock, LeadStatus.DUPLICATE)
    clock.advance(60)

    [bulk] = store.retries.requeue([duplicate.id], clock.now(), "retried by alice")
    [by_id] = store.retries.requeue([duplicate.id], clock.now(), "retried by alice", duplicates=True)

    assert (bulk.outcome, bulk.previous) == (RequeueOutcome.NOT_RETRYABLE, LeadStatus.DUPLICATE)
    assert (by_id.outcome, by_id.previous) == (RequeueOutcome.REQUEUED, LeadStatus.DUPLICATE)
    assert store.leads.get(duplicate.id).status is LeadStatus.QUEUED
    assert store.redis.zscore(keys.ready_key(), duplicate.id) == clock.now()
    assert retained(store.redis, keys.retained_leads_key()) == {}
    assert_indexes_consistent(store)


def test_purge_deletes_records_then_leads_keeping_failed_records_and_counts_right(store, cipher, clock):
    [delivered] = leads_in(store, cipher, clock, LeadStatus.DELIVERED, source="web")
    [dead] = leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")
    [queued] = leads_in(store, cipher, clock, LeadStatus.QUEUED, source="web")
    clock.advance(DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=1, leads=0)
    assert not store.redis.hexists(keys.lead_key(delivered.id), "record")
    assert store.redis.hexists(keys.lead_key(dead.id), "record")
    assert store.redis.ttl(keys.lead_key(dead.id)) == store.redis.ttl(keys.lead_key(delivered.id)) == -1
    clock.advance(29 * DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=0, leads=2)
    for gone in (delivered, dead):
        with pytest.raises(LeadNotFoundError):
            store.leads.get(gone.id)
    assert index_ids(store.redis, keys.source_index_key("web")) == [queued.id]
    assert store.leads.status_counts()[LeadStatus.DELIVERED] == store.leads.status_counts()[LeadStatus.DEAD] == 0
    assert_indexes_consistent(store)


def test_a_lead_held_after_its_record_is_purged_takes_the_compact_memory_of_a_hash_without_it(store, cipher, clock):
    # Redis keeps a hash in its large encoding once a long value (the encrypted record) was in it, even after that
    # value is deleted: each lead held for the retention days would take twice the memory the README sizes.
    [delivered] = leads_in(store, cipher, clock, LeadStatus.DELIVERED, source="web")
    lead_key = keys.lead_key(delivered.id)
    before = store.redis.hgetall(lead_key)
    assert store.redis.object("encoding", lead_key) == b"hashtable"
    clock.advance(DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=1, leads=0)

    assert store.redis.object("encoding", lead_key) in (b"listpack", b"ziplist")
    assert store.redis.hgetall(lead_key) == {k: v for k, v in before.items() if k != b"record"}
    assert store.redis.ttl(lead_key) == -1
    assert store.leads.get(delivered.id).status is LeadStatus.DELIVERED
    assert_indexes_consistent(store)


def test_purge_keeps_a_duplicates_record_until_the_lead_goes(store, cipher, clock):
    [duplicate] = leads_in(store, cipher, clock, LeadStatus.DUPLICATE)
    clock.advance(DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=0, leads=0)
    assert store.redis.hexists(keys.lead_key(duplicate.id), keys.RECORD_FIELD)
    clock.advance(29 * DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=0, leads=1)
    assert not store.redis.exists(keys.lead_key(duplicate.id))
    assert_indexes_consistent(store)


def test_purge_deletes_a_test_leads_kept_submission_with_the_records_and_keeps_a_rejected_ones(store, cipher, clock):
    test, rejected = (make_lead(status=status, unnormalized=True) for status in (LeadStatus.TEST, LeadStatus.REJECTED))
    store.leads.admit([test, rejected], [cipher.seal(test.record), cipher.seal(rejected.record)], clock.now())
    clock.advance(DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=1, leads=0)
    assert not store.redis.hexists(keys.lead_key(test.id), keys.SUBMISSION_FIELD)
    assert store.redis.hexists(keys.lead_key(rejected.id), keys.SUBMISSION_FIELD)
    assert store.leads.get(test.id).status is LeadStatus.TEST
    assert_indexes_consistent(store)


def test_purge_of_a_lead_whose_hash_expired_first_finds_its_index_entries(store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DELIVERED, source="web")
    leads_in(store, cipher, clock, LeadStatus.QUEUED, source="other")
    store.redis.delete(keys.lead_key(lead.id))
    clock.advance(31 * DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=0, leads=1)
    assert store.leads.status_counts()[LeadStatus.DELIVERED] == 0
    assert not store.redis.exists(keys.lead_events_key(lead.id))
    assert_indexes_consistent(store)


def test_purge_pass_goes_on_past_a_full_chunk_of_kept_failed_records(store, cipher, clock, monkeypatch):
    monkeypatch.setattr(retention, "PURGE_CHUNK_LEADS", 2)
    failed = leads_in(store, cipher, clock, LeadStatus.REJECTED, count=2)
    failed += leads_in(store, cipher, clock, LeadStatus.DEAD)
    clock.advance(1)
    delivered = leads_in(store, cipher, clock, LeadStatus.DELIVERED, count=3)
    clock.advance(DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=3, leads=0)
    assert [store.redis.hexists(keys.lead_key(lead.id), "record") for lead in failed + delivered] == [1] * 3 + [0] * 3
    assert retained(store.redis, keys.retained_records_key()) == {}


def test_purge_lock_lets_one_pass_run_per_interval(store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.SPAM)
    clock.advance(31 * DAY)

    assert store.retention.purge_if_due(clock.now()) == PurgeReport(records=1, leads=1)
    assert store.retention.purge_if_due(clock.now()) is None


def test_index_pages_through_ties_and_older_leads_without_repeats(store, cipher, clock):
    older = leads_in(store, cipher, clock, LeadStatus.DEAD, count=2, source="web")
    clock.advance(1)
    bulk = leads_in(store, cipher, clock, LeadStatus.DEAD, count=5, source="web")  # one receipt time for all five
    pages, after = [], None
    while True:
        page = store.index.page(Selection(LeadStatus.DEAD, "web"), after, 3)
        pages.append(page.ids)
        if page.next is None:
            break
        after = page.next

    assert [len(ids) for ids in pages] == [3, 3, 1]
    flat = [lead_id for ids in pages for lead_id in ids]
    assert flat[:5] == sorted((lead.id for lead in bulk), reverse=True)
    assert sorted(flat[5:]) == sorted(lead.id for lead in older)


def test_a_kept_submission_is_replaced_by_its_record_only_while_the_lead_is_retryable(store, cipher, clock):
    refused = make_lead(status=LeadStatus.REJECTED, unnormalized=True)
    store.leads.admit([refused], [cipher.seal({"phone": "x"})], clock.now())
    [delivered] = leads_in(store, cipher, clock, LeadStatus.DELIVERED)
    store.redis.hset(keys.lead_key(delivered.id), keys.SUBMISSION_FIELD, "kept")  # not retryable all the same
    assert store.retries.refused_submission(refused.id).source == refused.source
    normalized = dataclasses.replace(refused, external_id="crm-9", phone_masked="+1******0142", warnings=("w",))

    adoption = store.retries.adopt_record(normalized, cipher.seal(refused.record), clock.now())

    assert adoption == Adoption(LeadStatus.QUEUED)
    assert store.retries.adopt_record(normalized, cipher.seal(refused.record), clock.now()) == Adoption(None)
    stored = store.redis.hgetall(keys.lead_key(refused.id))
    assert keys.SUBMISSION_FIELD.encode() not in stored and cipher.open(stored[b"record"]) == refused.record
    assert (stored[b"external_id"], stored[b"phone"], stored[b"warnings"]) == (b"crm-9", b"+1******0142", b'["w"]')
    assert stored[b"status"] == b"rejected"  # the re-queue that follows makes it queued
    assert store.retries.refused_submission(refused.id) is None
    assert store.retries.adopt_record(delivered, cipher.seal(delivered.record), clock.now()) == Adoption(None)


def test_adopting_a_record_makes_a_repeat_person_within_the_window_a_duplicate(store, cipher, clock):
    [earlier] = leads_in(store, cipher, clock, LeadStatus.QUEUED, person="fp-1", person_memory_seconds=3600)
    refused = make_lead(status=LeadStatus.REJECTED, unnormalized=True, extra_fields={"error": "phoneNumber: bad"})
    store.leads.admit([refused], [cipher.seal({"phone": "x"})], clock.now())
    assert store.leads.get(refused.id).error == "phoneNumber: bad"
    person = dataclasses.replace(refused, person="fp-1", person_memory_seconds=3600, duplicate_window_seconds=600)

    adoption = store.retries.adopt_record(person, cipher.seal(refused.record), clock.now())

    assert adoption.status is LeadStatus.DUPLICATE and earlier.id in adoption.detail
    duplicate = store.leads.get(refused.id)
    assert (duplicate.status, duplicate.error) == (LeadStatus.DUPLICATE, None)  # no failure left to follow up
    assert store.leads.status_counts()[LeadStatus.REJECTED] == 0
    assert_indexes_consistent(store)


@pytest.mark.parametrize("outlives", [False, True], ids=["taken-over", "meta-leadgen-id"])
def test_a_key_naming_a_purged_lead_is_taken_over_unless_it_outlives_its_lead(store, cipher, clock, outlives):
    key = {"idempotency_key": "k-77", "idempotency_ttl_seconds": 7 * DAY, "idempotency_outlives_lead": outlives}
    [first] = leads_in(store, cipher, clock, LeadStatus.DELIVERED, **key)
    clock.advance(31 * DAY)  # the key was set for longer than the lead was kept (a retention lowered since)
    assert store.retention.purge(clock.now()).leads == 1
    stored_key = keys.idempotency_key(first.source, "k-77")

    [again] = store.leads.admit([make_lead(**key)], [cipher.seal({"phoneNumber": "+12125550142"})], clock.now())

    if outlives:
        assert (again.id, again.repeated) == (first.id, True)
        assert store.leads.status_counts()[LeadStatus.QUEUED] == 0
    else:
        assert not again.repeated and again.status is LeadStatus.QUEUED
        assert store.redis.get(stored_key).decode() == again.id
        assert 7 * DAY - 60 < store.redis.ttl(stored_key) <= 7 * DAY
    assert_indexes_consistent(store)


def test_retry_of_a_meta_lead_that_never_got_its_record_retrieves_it_again_with_a_fresh_count_of_tries(
    store, cipher, clock
):
    [lead] = leads_in(
        store, cipher, clock, LeadStatus.FETCHING, record={}, extra_fields={keys.LEADGEN_ID_FIELD: "900000000000001"}
    )
    for _ in range(3):
        store.fetches.defer(lead.id, clock.now(), clock.now() + 30, "Graph API 503", count_attempt=True)
    assert store.fetches.begin(lead.id, clock.now()).fetch_attempts == 3
    reason = "gave up: the Graph API kept failing"
    store.fetches.complete(lead.id, Completion(LeadStatus.DEAD, reason, error=reason), clock.now())

    [result] = store.retries.requeue([lead.id], clock.now(), "retried by alice")

    assert (result.outcome, result.previous) == (RequeueOutcome.REFETCHING, LeadStatus.DEAD)
    again = store.leads.get(lead.id)
    assert (again.status, again.error) == (LeadStatus.FETCHING, None)
    assert store.fetches.begin(lead.id, clock.now()).fetch_attempts == 0  # what its retrieval job counts from
    assert_indexes_consistent(store)
