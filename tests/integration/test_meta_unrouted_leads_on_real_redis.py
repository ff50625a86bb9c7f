"""Meta leads announced for a Page no source listed yet, on a real Redis and through the Graph stand-in over loopback
HTTP: their ids are remembered (only ids), and the backfill takes them in once a source lists their Page or form."""

from __future__ import annotations

import dataclasses
import json

from app.meta import META_LEAD_RETENTION_SECONDS, MetaIntake
from app.models import LeadStatus
from app.schemas.meta import LeadgenChange
from app.sources import SourceRegistry
from app.store import keys
from app.store import unrouted as unrouted_module
from app.store.fetches import FETCH_LEASE_SECONDS
from tests.graphretrieval import FORM_ID, PAGE_ID, add_leads, facebook_source, retrieval_over_http
from tests.graphstub import GraphStub

NEW_PAGE, NEW_FORM = "100000000000009", "200000000000009"  # a client's Page subscribed before its source was added
UNKNOWN_PAGE = "100000000000077"  # a Page no source will list


def announce_without_a_source(store, clock, *changes):
    """The webhook's admission while only the first client's source is configured: the new Page's leads skipped."""
    admission = MetaIntake(store, SourceRegistry([facebook_source()]), clock, lambda jobs: None)
    assert admission.admit(list(changes)) == []


def with_the_new_pages_source():
    new_client = dataclasses.replace(facebook_source(), slug="fb-new", page_ids=(NEW_PAGE,), form_ids=())
    return SourceRegistry([facebook_source(), new_client])


def remembered_entries(store):
    """The unrouted changes remembered, as stored."""
    return store.redis.zrange(keys.unrouted_changes_key(), 0, -1)


def remembered(store):
    """The unrouted changes remembered, each read as the list it was stored as."""
    return [json.loads(member) for member in remembered_entries(store)]


def test_a_lead_skipped_for_want_of_a_source_is_retrieved_once_a_source_lists_its_page(store, cipher, clock):
    stub = GraphStub()
    add_leads(stub, clock, ["900000000000009"], form_id=NEW_FORM)
    announce_without_a_source(store, clock, LeadgenChange("900000000000009", NEW_PAGE, NEW_FORM, "300000000000009"))
    assert remembered(store) == [["900000000000009", NEW_PAGE, NEW_FORM, "300000000000009"]]
    clock.advance(META_LEAD_RETENTION_SECONDS - 60)  # the source comes a while later, while Meta still keeps the lead

    with retrieval_over_http(store, stub, with_the_new_pages_source(), cipher, clock) as retrieval:
        assert retrieval.is_backfill_configured()
        assert retrieval.backfill() == 1
        assert store.intake_handover.take() == {("fb-new", "accepted"): 1}  # counted as the webhook counts a lead
        clock.advance(FETCH_LEASE_SECONDS)
        [lead_id] = retrieval.due_fetches()
        assert retrieval.fetch(lead_id) is LeadStatus.QUEUED
        assert retrieval.backfill() == 0  # taken in once

    lead = store.leads.get(lead_id)
    assert lead.source == "fb-new" and any("before a source listed it" in event.detail for event in lead.events)
    assert store.redis.hget(keys.lead_key(lead_id), "meta_page_id") == NEW_PAGE.encode()
    assert remembered(store) == []


def test_a_lead_no_source_lists_yet_stays_remembered_and_one_announced_again_once(store, cipher, clock):
    change = LeadgenChange("900000000000077", UNKNOWN_PAGE, "200000000000077")
    announce_without_a_source(store, clock, change)
    clock.advance(60)
    announce_without_a_source(store, clock, change)  # Meta sends a notification again when unsure it arrived

    with retrieval_over_http(store, GraphStub(), with_the_new_pages_source(), cipher, clock) as retrieval:
        assert retrieval.backfill() == 0

    assert remembered(store) == [["900000000000077", UNKNOWN_PAGE, "200000000000077", None]]
    [(_, first_came)] = store.redis.zrange(keys.unrouted_changes_key(), 0, -1, withscores=True)
    assert first_came == clock.now() - 60


def test_a_lead_meta_no_longer_keeps_is_not_taken_in_when_its_source_comes(store, cipher, clock):
    announce_without_a_source(store, clock, LeadgenChange("900000000000009", NEW_PAGE, NEW_FORM))
    clock.advance(META_LEAD_RETENTION_SECONDS + 1)

    with retrieval_over_http(store, GraphStub(), with_the_new_pages_source(), cipher, clock) as retrieval:
        assert retrieval.backfill() == 0

    assert store.leads.status_counts()[LeadStatus.FETCHING] == 0


def test_only_the_newest_unrouted_leads_are_remembered(store, clock, monkeypatch):
    monkeypatch.setattr(unrouted_module, "MAX_UNROUTED_CHANGES", 3)
    for n in range(5):
        announce_without_a_source(store, clock, LeadgenChange(f"90000000000007{n}", UNKNOWN_PAGE))
        clock.advance(1)

    assert [leadgen_id for leadgen_id, *_ in remembered(store)] == [f"90000000000007{n}" for n in (2, 3, 4)]


def test_the_leads_of_a_configured_page_are_not_remembered(store, clock):
    admission = MetaIntake(store, SourceRegistry([facebook_source()]), clock, lambda jobs: None)

    [admitted] = admission.admit([LeadgenChange("900000000000001", PAGE_ID, FORM_ID)])

    assert admitted.status is LeadStatus.FETCHING and remembered(store) == []


def test_a_lead_the_webhook_took_in_once_its_source_came_is_forgotten_by_the_backfill_without_counting_it_again(
    store, cipher, clock
):
    change = LeadgenChange("900000000000009", NEW_PAGE, NEW_FORM)
    announce_without_a_source(store, clock, change)
    clock.advance(60)
    [taken] = MetaIntake(store, with_the_new_pages_source(), clock, lambda jobs: None).admit([change])  # sent again

    with retrieval_over_http(store, GraphStub(), with_the_new_pages_source(), cipher, clock) as retrieval:
        assert retrieval.backfill() == 0
        assert store.intake_handover.take() == {}

    assert store.leads.status_counts()[LeadStatus.FETCHING] == 1 and not taken.repeated
    assert remembered(store) == []


def test_a_remembered_change_that_cannot_be_read_is_forgotten_by_the_backfill(store, cipher, clock):
    store.unrouted.remember(["not a change", json.dumps(["900000000000009", 7, None, None])], clock.now(), 3600)

    with retrieval_over_http(store, GraphStub(), with_the_new_pages_source(), cipher, clock) as retrieval:
        assert retrieval.backfill() == 0

    assert remembered_entries(store) == []
