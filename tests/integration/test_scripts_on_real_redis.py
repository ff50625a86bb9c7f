"""Store scripts whose edge cases the delivery scenarios do not reach, on a real Redis."""

from __future__ import annotations

from app.models import LeadStatus
from app.store import keys
from app.store.batches import Outcome
from app.store.scripts import Scripts
from tests.factories import make_lead


def test_admit_returns_the_first_lead_for_a_repeated_idempotency_key(store, cipher, clock):
    first, second = make_lead(idempotency_key="k1"), make_lead(idempotency_key="k1")

    admitted = store.leads.admit([first, second], [cipher.seal(first.record), cipher.seal(second.record)], clock.now())

    assert [(a.id, a.status, a.repeated) for a in admitted] == [
        (first.id, LeadStatus.QUEUED, False),
        (first.id, LeadStatus.QUEUED, True),
    ]
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1
    assert not store.redis.exists(keys.lead_key(second.id))


def test_admit_answers_a_repeated_key_with_the_digest_its_first_lead_was_taken_with(store, cipher, clock):
    first = make_lead(idempotency_key="k2", request_digest="digest-1")
    again = make_lead(idempotency_key="k2", request_digest="digest-2")
    unkeyed = make_lead()

    admitted = store.leads.admit(
        [first, again, unkeyed], [cipher.seal(lead.record) for lead in (first, again, unkeyed)], clock.now()
    )

    assert [(a.id, a.repeated, a.request_digest) for a in admitted] == [
        (first.id, False, ""),
        (first.id, True, "digest-1"),
        (unkeyed.id, False, ""),
    ]


def test_claim_skips_ready_ids_whose_lead_has_expired(store, cipher, clock):
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    store.redis.zadd(keys.ready_key(), {"gone": clock.now() - 1})

    batch = store.batches.claim(clock.now(), 200, 30)

    assert [claimed.id for claimed in batch.leads] == [lead.id]
    assert store.batches.depth() == 0


def test_settle_answers_the_ids_of_the_leads_it_changed(store, cipher, clock):
    leads = [make_lead(), make_lead()]
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    batch = store.batches.claim(clock.now(), 200, 30)
    outcomes = [Outcome(lead.id, LeadStatus.DELIVERED, "ok") for lead in leads]

    first = store.batches.settle(batch.id, outcomes, clock.now(), False)
    again = store.batches.settle(batch.id, outcomes, clock.now(), True)

    assert first == {lead.id for lead in leads}
    assert again == set()


def test_settle_adds_the_leads_it_delivered_to_the_delivered_total_once_since_the_first(store, cipher, clock):
    leads = [make_lead(), make_lead(), make_lead()]
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    batch = store.batches.claim(clock.now(), 200, 30)
    first = clock.now()
    store.batches.settle(batch.id, [Outcome(leads[0].id, LeadStatus.DELIVERED, "ok")], first, False)
    clock.advance(5)
    outcomes = [Outcome(lead.id, LeadStatus.DELIVERED, "ok") for lead in leads[1:]]
    store.batches.settle(batch.id, [*outcomes, Outcome(leads[0].id, LeadStatus.DELIVERED, "again")], clock.now(), True)

    total = store.redis.hgetall(keys.delivered_total_key())

    assert total == {
        keys.DELIVERED_TOTAL_COUNT_FIELD.encode(): b"3",
        keys.DELIVERED_TOTAL_SINCE_FIELD.encode(): repr(first).encode(),
    }


def test_settle_leaves_alone_a_lead_reclaimed_into_another_batch(store, cipher, clock):
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    stale = store.batches.claim(clock.now(), 200, 1)
    clock.advance(2)
    assert store.batches.reclaim_stale(clock.now(), 3600) == 1
    store.batches.claim(clock.now(), 200, 30)

    changed = store.batches.settle(stale.id, [Outcome(lead.id, LeadStatus.DELIVERED, "late")], clock.now(), True)

    assert changed == set()
    assert store.leads.get(lead.id).status is LeadStatus.SENDING


def test_budget_hold_never_shortens_an_existing_hold(store, clock):
    store.budget.hold_until(clock.now() + 30, clock.now())
    store.budget.hold_until(clock.now() + 5, clock.now())

    assert store.budget.reserve(clock.now()) == 30


def test_only_one_caller_takes_the_probe_of_a_pause(store, clock):
    store.pause.pause("careCycle 401", clock.now(), clock.now())

    assert [store.pause.take_probe(clock.now(), 10) for _ in range(3)] == [True, False, False]
    assert store.pause.get().next_probe_at == clock.now() + 10


def test_admit_marks_the_same_phone_within_the_window_duplicate_and_remembers_only_originals(store, cipher, clock):
    record = {"phoneNumber": "+12125550142", "postalCode": "10001"}
    window = {"person": "+12125550142", "person_memory_seconds": 86400, "duplicate_window_seconds": 3600}
    first, second = make_lead(record=dict(record), **window), make_lead(record=dict(record), **window)
    other_source = make_lead(record=dict(record), person="+12125550142", person_memory_seconds=86400)

    statuses = [
        a.status
        for lead in (first, second, other_source)
        for a in store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    ]
    clock.advance(3600)
    late = make_lead(record=dict(record), **window)
    [late_admitted] = store.leads.admit([late], [cipher.seal(late.record)], clock.now())

    assert statuses == [LeadStatus.QUEUED, LeadStatus.DUPLICATE, LeadStatus.QUEUED]
    assert late_admitted.status is LeadStatus.QUEUED
    assert store.batches.depth() == 3
    assert store.leads.status_counts()[LeadStatus.DUPLICATE] == 1


def test_admission_loads_its_script_again_after_redis_lost_its_scripts(store, cipher, clock):
    store.redis.script_flush()
    lead = make_lead()

    [admitted] = store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())

    assert admitted.id == lead.id and store.batches.depth() == 1


def test_a_bulk_admission_loads_its_script_again_after_redis_lost_its_scripts(store, cipher, clock):
    store.redis.script_flush()
    leads = [make_lead(), make_lead()]

    admitted = store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())

    assert [a.id for a in admitted] == [lead.id for lead in leads] and store.batches.depth() == 2


def test_a_phone_whose_earlier_lead_was_rejected_is_not_a_duplicate(store, cipher, clock):
    window = {"person": "fp-1", "person_memory_seconds": 86400, "duplicate_window_seconds": 3600}
    first = make_lead(**window)
    store.leads.admit([first], [cipher.seal(first.record)], clock.now())
    batch = store.batches.claim(clock.now(), 200, 30)
    store.batches.settle(batch.id, [Outcome(first.id, LeadStatus.REJECTED, "refused", error="x")], clock.now(), True)
    second, third = make_lead(**window), make_lead(**window)

    statuses = [
        admitted.status
        for lead in (second, third)
        for admitted in store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    ]

    assert statuses == [LeadStatus.QUEUED, LeadStatus.DUPLICATE]


def test_claim_settles_a_queued_lead_with_no_record_dead_instead_of_dropping_it(store, cipher, clock):
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    store.redis.hdel(keys.lead_key(lead.id), "record")

    assert store.batches.claim(clock.now(), 200, 30) is None

    stored = store.leads.get(lead.id)
    assert (stored.status, stored.error) == (LeadStatus.DEAD, "no record to send")
    assert store.leads.status_counts()[LeadStatus.DEAD] == 1 and store.leads.status_counts()[LeadStatus.QUEUED] == 0


def test_reclaim_spends_an_attempt_and_gives_up_a_lead_that_reached_the_maximum_age(store, cipher, clock):
    young, old = make_lead(), make_lead()
    store.leads.admit([old], [cipher.seal(old.record)], clock.now())
    clock.advance(100)
    store.leads.admit([young], [cipher.seal(young.record)], clock.now())
    store.batches.claim(clock.now(), 200, 1)
    clock.advance(2)

    assert store.batches.reclaim_stale(clock.now(), max_age_seconds=102) == 2  # the old lead's age, to the second

    kept, given_up = store.leads.get(young.id), store.leads.get(old.id)
    assert (kept.status, kept.attempts) == (LeadStatus.QUEUED, 1)
    assert (given_up.status, given_up.attempts) == (LeadStatus.DEAD, 1)
    assert given_up.error is not None and given_up.error.startswith("gave up after maximum age: batch ")
    assert store.batches.depth() == 1 and store.batches.in_flight() == 0
    assert store.redis.get(keys.failed_bucket_key(int(clock.now() // 60))) == b"1"
    assert store.leads.status_counts()[LeadStatus.DEAD] == 1


def test_reclaim_counts_the_maximum_age_of_a_lead_an_operator_retried_from_the_retry(store, cipher, clock):
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    store.batches.claim(clock.now(), 200, 1)
    clock.advance(200)
    assert store.batches.reclaim_stale(clock.now(), max_age_seconds=100) == 1  # dead: past its age
    store.retries.requeue([lead.id], clock.now(), "retried by alice")
    store.batches.claim(clock.now(), 200, 1)
    clock.advance(2)

    assert store.batches.reclaim_stale(clock.now(), max_age_seconds=100) == 1

    again = store.leads.get(lead.id)
    assert (again.status, again.attempts) == (LeadStatus.QUEUED, 2)  # back in the queue: 2 s since the retry


def test_an_admission_run_twice_as_redis_py_retries_it_on_a_lost_reply_stores_the_lead_once(store, cipher, clock):
    # The web tier's client sends a command again when its connection drops: if the drop came after Redis ran
    # the admission, it runs again for the same lead, which then must not count twice or become its own duplicate.
    lead = make_lead(person="fp-1", person_memory_seconds=86400, duplicate_window_seconds=86400)

    first = store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    again = store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())

    assert [(a.id, a.status) for a in first + again] == [(lead.id, LeadStatus.QUEUED)] * 2
    assert store.leads.get(lead.id).status is LeadStatus.QUEUED
    assert len(store.leads.get(lead.id).events) == 1
    counts = store.leads.status_counts()
    assert (counts[LeadStatus.QUEUED], counts[LeadStatus.DUPLICATE]) == (1, 0)


def test_carecycle_answering_again_makes_retrying_leads_due_in_receipt_order_in_chunks(store, cipher, clock):
    leads = [make_lead() for _ in range(5)]
    for lead in leads:
        store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
        clock.advance(1)
    batch = store.batches.claim(clock.now(), 200, 30)
    later = [clock.now() + 600 - i for i in range(5)]  # the newest lead due first
    store.batches.settle(
        batch.id,
        [
            Outcome(lead.id, LeadStatus.RETRYING, "503", error="503", ready_at=at, next_attempt_at=at)
            for lead, at in zip(leads, later, strict=True)
        ],
        clock.now(),
        release=True,
    )
    store.outage.failing("careCycle 503", clock.now())

    assert store.outage.recovered(clock.now(), chunk=2) == 5
    assert all(store.leads.get(lead.id).next_attempt_at is None for lead in leads)  # due now, not at their backoff
    due = store.batches.claim(clock.now(), 200, 30)

    assert due is not None and [lead.id for lead in due.leads] == [lead.id for lead in leads]
    assert store.leads.status_counts()[LeadStatus.RETRYING] == 0
    assert store.outage.get() is None and store.outage.recovered(clock.now(), chunk=2) is None  # the spell is over


def test_a_take_of_handed_over_intake_counts_asked_again_answers_what_it_took_and_nothing_newer(store):
    from app.store.metrics import HANDOVER_RECEIPT_SECONDS, IntakeHandover

    # The second take asks again for the first, as a web process does after the first one's answer was lost.
    tokens = iter(["take-1", "take-1", "take-2", "take-3"])
    handover = IntakeHandover(store.redis, Scripts.register(store.redis), new_token=lambda: next(tokens))
    handover.add({("fb-x", "accepted"): 3})
    first = handover.take()
    handover.add({("fb-x", "accepted"): 2})

    again = handover.take()
    newer = handover.take()

    assert first == again == {("fb-x", "accepted"): 3}
    assert newer == {("fb-x", "accepted"): 2}
    assert 0 < store.redis.ttl(keys.intake_handover_receipt_key("take-1")) <= HANDOVER_RECEIPT_SECONDS
    assert handover.take() == {}  # nothing left: no receipt is made for an empty take


def _retrying(store, cipher, clock, count: int, **outcome) -> list[str]:
    """`count` leads admitted, claimed and settled `retrying`, due now, with the `outcome`'s other fields."""
    leads = [make_lead() for _ in range(count)]
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    batch = store.batches.claim(clock.now(), 200, 30)
    at = clock.now()
    outcomes = [Outcome(lead.id, LeadStatus.RETRYING, "500", error="500", ready_at=at, **outcome) for lead in leads]
    store.batches.settle(batch.id, outcomes, clock.now(), release=True)
    return [lead.id for lead in leads]


def test_claim_looks_past_due_leads_of_another_kind_to_fill_a_batch_of_the_first_ones_kind(store, cipher, clock):
    leads = [make_lead() for _ in range(4)]
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    batch = store.batches.claim(clock.now(), 200, 30)
    failed = {leads[0].id, leads[3].id}  # a 5xx failed them: the first due and the last, two others between
    outcomes = [
        Outcome(lead.id, LeadStatus.RETRYING, "500", ready_at=clock.now() + i, failed_at=clock.now())
        if lead.id in failed
        else Outcome(lead.id, LeadStatus.RETRYING, "timed out", ready_at=clock.now() + i)
        for i, lead in enumerate(leads)
    ]
    store.batches.settle(batch.id, outcomes, clock.now(), release=True)
    clock.advance(3)

    again = store.batches.claim(clock.now(), 2, 30)

    assert again is not None and [lead.id for lead in again.leads] == [leads[0].id, leads[3].id]
    assert store.batches.depth() == 2


def test_a_claimed_lead_shows_no_next_attempt_time_once_its_retry_is_under_way(store, cipher, clock):
    [lead_id] = _retrying(store, cipher, clock, 1, next_attempt_at=clock.now())
    assert store.leads.get(lead_id).next_attempt_at == clock.now()

    store.batches.claim(clock.now(), 200, 30)

    claimed = store.leads.get(lead_id)
    assert (claimed.status, claimed.next_attempt_at) == (LeadStatus.SENDING, None)


def test_a_lead_carecycle_took_or_refused_leaves_its_fault_group_so_an_operator_retry_starts_afresh(
    store, cipher, clock
):
    grouped = _retrying(store, cipher, clock, 2, failed_at=clock.now(), fault_group="group-1")
    batch = store.batches.claim(clock.now(), 200, 30)
    assert batch is not None and {lead.fault_group for lead in batch.leads} == {"group-1"}
    taken, refused = grouped
    outcomes = [Outcome(taken, LeadStatus.DELIVERED, "ok"), Outcome(refused, LeadStatus.REJECTED, "bad", error="bad")]

    store.batches.settle(batch.id, outcomes, clock.now(), release=True)

    for lead_id in grouped:
        fields = store.redis.hmget(keys.lead_key(lead_id), [keys.FAILED_AT_FIELD, keys.FAULT_GROUP_FIELD])
        assert fields == [None, None]
    store.retries.requeue([refused], clock.now(), "retried by alice")
    again = store.batches.claim(clock.now(), 200, 30)
    assert again is not None and [(lead.id, lead.fault_group, lead.failed_at) for lead in again.leads] == [
        (refused, None, None)
    ]


def test_a_batch_taken_back_is_not_put_in_flight_again_by_its_worker_keeping_its_lease(store, cipher, clock):
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    batch = store.batches.claim(clock.now(), 200, 1)
    assert store.batches.extend(batch.id, clock.now() + 1)  # its worker still at it
    clock.advance(2)
    store.batches.reclaim_stale(clock.now(), 3600)

    assert store.batches.extend(batch.id, clock.now() + 30) is False

    assert store.batches.in_flight() == 0


def test_settle_keeps_the_latency_of_the_newest_thousand_deliveries(store, cipher, clock):
    first, *others = leads = [make_lead() for _ in range(1001)]
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], clock.now())
    batch = store.batches.claim(clock.now(), 1001, 30)
    clock.advance(2)
    store.batches.settle(batch.id, [Outcome(first.id, LeadStatus.DELIVERED, "ok")], clock.now(), False)
    clock.advance(5)

    store.batches.settle(batch.id, [Outcome(lead.id, LeadStatus.DELIVERED, "ok") for lead in others], clock.now(), True)

    samples = store.redis.lrange(keys.latency_samples_key(), 0, -1)
    assert len(samples) == 1000 and {sample.split()[1] for sample in samples} == {b"7"}  # the first's 2 s dropped
