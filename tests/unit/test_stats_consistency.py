"""`/v1/stats` and the lead list against the truth: a recount of the leads the relay holds, after many transitions.

The counts and indexes are kept by the store's scripts, never recounted by a request; a walk through admissions
(duplicates, repeats, Meta leads, refusals, leads with nothing to send), deliveries, lost batches, careCycle answering
again, retries (a Meta lead retrieved again, a refused submission given its record), Meta retrievals, lead hashes
deleted by hand and purges checks that no sequence of them lets a count or an index entry drift from the leads
themselves.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from app.models import LeadStatus
from app.store import keys
from app.store.batches import Outcome
from app.store.fetches import Completion
from tests.conftest import OPS_TOKEN
from tests.factories import make_lead, make_phone
from tests.storecheck import assert_indexes_consistent

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
HOUR, DAY = 3600, 86400
WINDOWS = {"person_memory_seconds": 7 * DAY, "duplicate_window_seconds": 3 * DAY}
ADMITTED_AS = [LeadStatus.QUEUED] * 4 + [LeadStatus.SPAM, LeadStatus.TEST, LeadStatus.FETCHING, LeadStatus.REJECTED]
SETTLED_AS = [LeadStatus.DELIVERED] * 2 + [LeadStatus.REJECTED, LeadStatus.DEAD, LeadStatus.RETRYING, LeadStatus.QUEUED]
STEPS = ["admit", "admit", "claim", "settle", "settle", "reclaim", "retry", "fetch", "purge", "wait"]
STEPS += ["answer", "adopt", "erase"]
RETRIEVED_AS = [LeadStatus.QUEUED, LeadStatus.REJECTED, LeadStatus.DEAD, LeadStatus.TEST]


class Walk:
    """Random steps over the store, as intake, delivery, retrieval, operators and the purge pass take them."""

    def __init__(self, client, store, cipher, clock, seed):
        self.client, self.store, self.cipher, self.clock = client, store, cipher, clock
        self.rng = random.Random(seed)
        self.phones = [make_phone() for _ in range(6)]  # few people: repeats within the duplicate window
        self.batches = []
        self.erased = {}  # id -> (status, source) of a final lead whose hash was deleted by hand, until it is purged
        store.leads.start_counting_by_source(clock.now())  # as the first worker does, over an empty relay

    def step(self):
        getattr(self, self.rng.choice(STEPS))()

    def admit(self):
        leads = []
        for _ in range(self.rng.randint(1, 4)):
            status = self.rng.choice(ADMITTED_AS)
            overrides = {"status": status, "source": self.rng.choice(["web", "partner"])}
            if status is LeadStatus.QUEUED and self.rng.random() < 0.5:
                overrides.update(person=self.rng.choice(self.phones), **WINDOWS)
            if self.rng.random() < 0.2:
                overrides.update(idempotency_key=self.rng.choice("xyz"), idempotency_ttl_seconds=DAY)
            if status is LeadStatus.FETCHING:  # retried by an operator without a record: retrieved again
                overrides.update(extra_fields={keys.LEADGEN_ID_FIELD: f"lg{self.rng.randrange(10**9)}"})
            if status is LeadStatus.REJECTED and self.rng.random() < 0.5:  # its submission kept for a retry
                overrides.update(unnormalized=True)
            leads.append(make_lead(**overrides))
        sealed = [
            "" if lead.status is LeadStatus.FETCHING or self.rng.random() < 0.05 else self.cipher.seal(lead.record)
            for lead in leads
        ]  # now and then a queued lead with nothing to send: `dead` once claimed
        self.store.leads.admit(leads, sealed, self.clock.now())

    def claim(self):
        batch = self.store.batches.claim(self.clock.now(), self.rng.randint(1, 10), 30)
        if batch is not None:
            self.batches.append(batch)

    def settle(self):
        if not self.batches:
            return
        batch, now = self.batches.pop(self.rng.randrange(len(self.batches))), self.clock.now()
        outcomes = []
        for lead in batch.leads:
            status = self.rng.choice(SETTLED_AS)
            if status is LeadStatus.RETRYING:
                outcomes.append(Outcome(lead.id, status, "503", error="503", ready_at=now + 5, next_attempt_at=now + 5))
            elif status is LeadStatus.QUEUED:
                outcomes.append(Outcome(lead.id, status, "resent", ready_at=now, count_attempt=False))
            else:
                outcomes.append(
                    Outcome(lead.id, status, "settled", error=None if status is LeadStatus.DELIVERED else "no")
                )
        self.store.batches.settle(batch.id, outcomes, now, release=True)

    def reclaim(self):
        self.store.batches.reclaim_stale(self.clock.now(), 3 * DAY)

    def retry(self):
        status = self.rng.choice(["dead", "rejected"])
        if self.rng.random() < 0.5:
            self.client.post("/v1/leads/retry", json={"status": status}, headers=OPS)
            return
        status = self.rng.choice([status, "duplicate"])  # a duplicate is retried by its id alone
        failed = [member.decode() for member in self.store.redis.zrange(keys.status_index_key(status), 0, -1)]
        if failed:
            self.client.post(f"/v1/leads/{self.rng.choice(failed)}/retry", headers=OPS)

    def fetch(self):
        fetching = [member.decode() for member in self.store.redis.zrange(keys.fetching_key(), 0, -1)]
        if not fetching:
            return
        lead_id, status = self.rng.choice(fetching), self.rng.choice(RETRIEVED_AS)
        queued = status is LeadStatus.QUEUED
        completion = Completion(
            status,
            "retrieved",
            error="" if queued else "no",
            sealed_record=self.cipher.seal({"phoneNumber": self.phones[0]}) if queued else "",
            external_id=lead_id,
            phone_masked="+1******0001",
            person=self.rng.choice(self.phones),
            **WINDOWS,
        )
        self.store.fetches.complete(lead_id, completion, self.clock.now())

    def purge(self):
        self.store.retention.purge(self.clock.now())
        held = set(self.store.redis.zrange(keys.leads_index_key(), 0, -1))
        self.erased = {lead_id: was for lead_id, was in self.erased.items() if lead_id.encode() in held}

    def answer(self):
        """careCycle fails an upload, or takes one: its retrying leads are made due at once."""
        if self.rng.random() < 0.5:
            self.store.outage.failing("503", self.clock.now())
        else:
            self.store.outage.recovered(self.clock.now(), chunk=self.rng.randint(1, 5))

    def adopt(self):
        """An operator's retry of a lead whose kept submission now normalizes: it gets its record, then is queued
        again, or is a duplicate of its person."""
        rejected = [member.decode() for member in self.store.redis.zrange(keys.status_index_key("rejected"), 0, -1)]
        kept = [i for i in rejected if self.store.redis.hexists(keys.lead_key(i), keys.SUBMISSION_FIELD)]
        if not kept:
            return
        lead = make_lead(id=self.rng.choice(kept), person=self.rng.choice(self.phones), **WINDOWS)
        adoption = self.store.retries.adopt_record(lead, self.cipher.seal(lead.record), self.clock.now())
        if adoption.status is LeadStatus.QUEUED:
            self.store.retries.requeue([lead.id], self.clock.now(), "retried")

    def erase(self):
        """A settled lead's hash deleted by hand: the purge takes it out of every count and index in its time."""
        settled = [member.decode() for member in self.store.redis.zrange(keys.retained_leads_key(), 0, -1)]
        held = [lead for lead in self.store.leads.get_many(settled) if lead.id not in self.erased]
        if held:
            lead = self.rng.choice(held)
            self.erased[lead.id] = (lead.status.value, lead.source)
            self.store.redis.delete(keys.lead_key(lead.id))

    def wait(self):
        self.clock.advance(self.rng.choice([1, 60, HOUR, DAY, 10 * DAY, 31 * DAY]))


def held_leads(store):
    """Every lead the relay holds, read from the lead hashes themselves."""
    ids = [key.decode().removeprefix(keys.lead_key("")) for key in store.redis.scan_iter(match=keys.lead_key("*"))]
    return store.leads.get_many(lead_id for lead_id in ids if keys.is_lead_id(lead_id))


def recount(walk, held, source=None):
    """Leads by status, of `source` alone when given: those held, and those whose hash was deleted by hand until the
    purge takes them out."""
    counted = Counter(lead.status.value for lead in held if source in (None, lead.source))
    counted.update(status for status, of in walk.erased.values() if source in (None, of))
    return {status.value: counted[status.value] for status in LeadStatus}


def listed_ids(client, status):
    ids, cursor = [], None
    while True:
        args = {"status": status.value, "limit": 200, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/leads", query_string=args, headers=OPS).json
        ids += [lead["id"] for lead in body["leads"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return ids


@pytest.mark.parametrize("seed", range(3))
def test_stats_counts_and_the_lead_list_match_a_recount_of_the_leads_after_many_transitions(
    client, store, cipher, clock, seed
):
    walk = Walk(client, store, cipher, clock, seed)
    for step in range(120):
        walk.step()

        held = held_leads(store)
        counts = client.get("/v1/stats", headers=OPS).json["counts"]
        assert counts == recount(walk, held), f"after step {step}"
    for status in LeadStatus:
        assert sorted(listed_ids(client, status)) == sorted(lead.id for lead in held if lead.status is status)
    assert_indexes_consistent(store)


def source_counts(client, source):
    response = client.get("/v1/stats", query_string={"source": source}, headers=OPS)
    assert response.status_code == 200, response.json
    assert response.json["countsSource"] == source
    return response.json["counts"]


@pytest.mark.parametrize("seed", range(3))
def test_each_sources_counts_match_a_recount_of_its_leads_and_add_up_to_the_relay_wide_counts_after_many_transitions(
    client, store, cipher, clock, seed
):
    walk = Walk(client, store, cipher, clock, seed)
    store.leads.admit([make_lead(source="web")], [cipher.seal({"phoneNumber": make_phone()})], clock.now())
    for step in range(120):
        walk.step()

        held = held_leads(store)
        counts = client.get("/v1/stats", headers=OPS).json["counts"]
        summed = Counter[str]()
        for source in ("web", "partner"):
            by_source = source_counts(client, source)
            assert by_source == recount(walk, held, source), f"{source}, {step}"
            summed.update(by_source)
        assert counts == {status.value: summed[status.value] for status in LeadStatus}, f"after step {step}"
