"""Test helpers over the store: put leads into a status the way delivery would, and check the indexes."""

from __future__ import annotations

from app.models import LeadStatus, NewLead
from app.store import Store, keys
from app.store.batches import Outcome
from tests.factories import make_lead

# Statuses a lead can be admitted in directly; the others are reached through claim and settle.
_ADMITTED_AS = {LeadStatus.QUEUED, LeadStatus.SPAM, LeadStatus.TEST, LeadStatus.DUPLICATE, LeadStatus.FETCHING}


def leads_in(store: Store, cipher, clock, status: LeadStatus, count: int = 1, **overrides) -> list[NewLead]:
    """`count` new leads now in `status` (received at the clock's time), as admission and delivery put them."""
    admitted_as = status if status in _ADMITTED_AS else LeadStatus.QUEUED
    leads = [make_lead(status=admitted_as, **overrides) for _ in range(count)]
    if not leads:
        return []
    sealed = ["" if admitted_as is LeadStatus.FETCHING else cipher.seal(lead.record) for lead in leads]
    store.leads.admit(leads, sealed, clock.now())
    if status in _ADMITTED_AS:
        return leads
    batch = store.batches.claim(clock.now(), 10_000, 30)
    if status is LeadStatus.SENDING:
        return leads
    ours = {lead.id for lead in leads}
    outcomes = [
        Outcome(claimed.id, status, f"test: {status.value}", error=None if status is LeadStatus.DELIVERED else "boom")
        if claimed.id in ours
        else Outcome(claimed.id, LeadStatus.QUEUED, "test: back", ready_at=claimed.received_at, count_attempt=False)
        for claimed in batch.leads
    ]
    store.batches.settle(batch.id, outcomes, clock.now(), release=True)
    return leads


def index_ids(redis, key: str) -> list[str]:
    """Members of an index, newest first."""
    return [member.decode() for member in redis.zrevrange(key, 0, -1)]


def assert_indexes_consistent(store: Store) -> None:
    """Every held lead is in the leads index, its status's index and its source's index; counts match."""
    redis = store.redis
    held = set(index_ids(redis, keys.leads_index_key()))
    counts = store.leads.status_counts()
    by_status: set[str] = set()
    for status in LeadStatus:
        members = set(index_ids(redis, keys.status_index_key(status.value)))
        assert len(members) == counts[status], f"{status.value}: index {len(members)} != count {counts[status]}"
        for lead in store.leads.get_many(members):
            assert lead.status is status, f"{lead.id} is {lead.status.value}, indexed as {status.value}"
        by_status |= members
    assert by_status == held
    by_source: set[str] = set()
    for source in redis.smembers(keys.sources_seen_key()):
        members = set(index_ids(redis, keys.source_index_key(source.decode())))
        assert all(lead.source == source.decode() for lead in store.leads.get_many(members))
        by_source |= members
    assert by_source == held
