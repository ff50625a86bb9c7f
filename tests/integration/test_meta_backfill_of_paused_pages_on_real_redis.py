"""The Meta backfill and a Page whose retrieval is paused alone (its owner withdrew the lead access), on a real Redis
and through the Graph stand-in over loopback HTTP: the Page's forms are listed only as its probe, a listing that works
resumes it, and one refused again keeps it paused without failing the backfill."""

from __future__ import annotations

import logging

import pytest

from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.sources import SourceRegistry
from tests.graphretrieval import (
    BACKFILL_SECONDS,
    FORM_ID,
    PAGE_ID,
    PROBE_SECONDS,
    add_leads,
    announce,
    facebook_source,
)

OTHER_FORM = "200000000000002"  # a form of the same source none of whose leads met the Page's pause


@pytest.fixture
def sources():
    return SourceRegistry([facebook_source(form_ids=(FORM_ID, OTHER_FORM))])


@pytest.fixture
def paused_page(retrieval, store, stub, sources, clock):
    """Two leads of the Page announced; the first refused for want of the lead access, the second held for the Page."""
    leadgen_ids = ["900000000000001", "900000000000002"]
    add_leads(stub, clock, leadgen_ids)
    lead_ids = announce(store, sources, clock, leadgen_ids)
    stub.fail_next(403, 10, message="(#10) no lead access")
    assert [retrieval.fetch(lead_id) for lead_id in lead_ids] == [LeadStatus.FETCHING] * 2
    assert len(stub.requests) == 1  # the second lead was held without a call
    assert paused_pages(store, clock) == [PAGE_ID]
    return lead_ids


def paused_pages(store, clock):
    return list(collect_stats(StatsQuery(store, 60, clock.now()))["retrievalPausedPages"])


def listed_forms(stub):
    return [request.path.split("/")[-2] for request in stub.requests_to("/leads")]


def test_a_backfill_that_lists_a_paused_pages_form_resumes_the_page_and_its_held_leads_are_due_at_once(
    retrieval, paused_page, store, stub, clock
):
    add_leads(stub, clock, ["900000000000003"])  # a lead whose webhook never came
    clock.advance(PROBE_SECONDS)

    assert retrieval.backfill() == 1

    assert listed_forms(stub) == [FORM_ID, OTHER_FORM]
    assert paused_pages(store, clock) == []
    assert set(paused_page) <= set(retrieval.due_fetches())
    assert {retrieval.fetch(lead_id) for lead_id in paused_page} == {LeadStatus.QUEUED}
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 3


def test_a_backfill_refused_again_for_a_paused_page_keeps_it_paused_and_lists_the_other_forms_without_failing(
    retrieval, paused_page, store, stub, clock, caplog
):
    clock.advance(PROBE_SECONDS)
    stub.fail_next(403, 10, message="(#10) no lead access")

    with caplog.at_level(logging.WARNING):
        assert retrieval.backfill() == 0  # no error raised: the job does not fail at every interval

    assert listed_forms(stub) == [FORM_ID, OTHER_FORM]
    assert paused_pages(store, clock) == [PAGE_ID]
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time
    assert store.fetches.backfill_since(OTHER_FORM) is not None
    assert not [r for r in caplog.records if "backfill" in r.getMessage()]


def test_a_backfill_before_the_paused_pages_next_probe_skips_its_form_without_a_call(
    retrieval, paused_page, store, stub, clock
):
    assert retrieval.backfill() == 0

    assert listed_forms(stub) == [OTHER_FORM]
    assert paused_pages(store, clock) == [PAGE_ID]
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time
