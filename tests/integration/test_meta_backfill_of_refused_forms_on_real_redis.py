"""The Meta backfill and a form whose listing Graph refuses for a permission (codes 10, 200-299) while no Page paused
alone is known for it, on a real Redis and through the Graph stand-in over loopback HTTP: Graph's refusal names no
Page and a source routes Pages and forms each on their own, so no Page is paused on a guess; the refusal is said once
per change (across workers: the store keeps it), the backfill job does not fail for it at every interval, and the form
is listed again at each backfill, the first listing that works saying so and taking in what was missed."""

from __future__ import annotations

import json
import logging

import pytest

from app.meta import META_LEAD_RETENTION_SECONDS
from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.sources import SourceRegistry
from tests.graphretrieval import BACKFILL_SECONDS, FORM_ID, add_leads, facebook_source, retrieval_over_http
from workers.graph import GraphNotFoundError, GraphTokenError
from workers.meta_backfill import BACKFILL_OVERLAP_SECONDS

OTHER_FORM = "200000000000002"
NO_LEAD_ACCESS = "(#200) no lead access"
DAY = 86400.0


@pytest.fixture
def sources():
    return SourceRegistry([facebook_source(form_ids=(FORM_ID, OTHER_FORM))])


@pytest.fixture
def other_worker(store, stub, sources, cipher, clock):
    with retrieval_over_http(store, stub, sources, cipher, clock) as retrieval:
        yield retrieval


def listed_forms(stub):
    return [request.path.split("/")[-2] for request in stub.requests_to("/leads")]


def listed_since(stub, form_id=FORM_ID):
    """The time from which each listing of `form_id` asked Graph for its leads (its `filtering`)."""
    requests = [r for r in stub.requests_to("/leads") if r.path.split("/")[-2] == form_id]
    return [float(json.loads(r.query["filtering"])[0]["value"]) for r in requests]


def said(caplog):
    """What the workers said of the backfill, at info and above: (level, line)."""
    return [(r.levelname, r.getMessage()) for r in caplog.records if "backfill" in r.getMessage()]


def test_a_refused_listing_of_a_form_of_no_known_page_is_said_and_fails_no_job_nor_pauses_a_page(
    retrieval, store, stub, clock, caplog
):
    add_leads(stub, clock, ["900000000000001"], form_id=OTHER_FORM)
    stub.fail_next(403, 200, message=NO_LEAD_ACCESS)

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        assert retrieval.backfill() == 1  # no error raised: the other form's lead is taken in

    assert listed_forms(stub) == [FORM_ID, OTHER_FORM]
    stats = collect_stats(StatsQuery(store, 60, clock.now()))
    assert stats["retrievalPausedPages"] == {} and stats["retrievalPaused"] is False  # no Page paused on a guess
    [reason] = stats["retrievalRefusedForms"].values()
    assert list(stats["retrievalRefusedForms"]) == [FORM_ID] and NO_LEAD_ACCESS in reason and "code 200" in reason
    assert stub.token not in reason
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # listed from there once read
    [(level, line)] = [(level, line) for level, line in said(caplog) if "refused" in line]
    assert level == "ERROR" and NO_LEAD_ACCESS in line and "code 200" in line
    assert [r.form_id for r in caplog.records if "refused" in r.getMessage()] == [FORM_ID]


def test_a_form_refused_alike_again_is_not_said_anew_by_any_worker_and_its_first_listing_takes_in_what_was_missed(
    retrieval, other_worker, store, stub, clock, caplog
):
    retrieval.backfill()  # listed while the token could read it
    clock.advance(BACKFILL_SECONDS)
    stub.fail_next(403, 200, message=NO_LEAD_ACCESS)
    retrieval.backfill()
    add_leads(stub, clock, ["900000000000001"])  # a lead of the refused form whose webhook never came
    clock.advance(BACKFILL_SECONDS)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        stub.fail_next(403, 200, message=NO_LEAD_ACCESS)
        assert other_worker.backfill() == 0  # the next interval's backfill, on another worker
        clock.advance(BACKFILL_SECONDS)
        assert retrieval.backfill() == 1  # the Page's owner granted the lead access again: listed since the last time

    assert [level for level, line in said(caplog) if "refused" in line] == ["INFO"]  # still refused: no alert again
    assert ("INFO", "meta backfill of a form lists its leads again") in said(caplog)
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1
    assert store.fetches.backfill_since(FORM_ID) is not None
    assert collect_stats(StatsQuery(store, 60, clock.now()))["retrievalRefusedForms"] == {}


def test_a_form_refused_again_after_a_listing_that_worked_or_for_another_reason_is_said_anew(
    retrieval, stub, clock, caplog
):
    with caplog.at_level(logging.INFO, logger="workers.meta"):
        stub.fail_next(403, 200, message=NO_LEAD_ACCESS)
        retrieval.backfill()
        clock.advance(BACKFILL_SECONDS)
        stub.fail_next(400, 10, message="(#10) permission missing")
        retrieval.backfill()
        clock.advance(BACKFILL_SECONDS)
        retrieval.backfill()  # listed
        clock.advance(BACKFILL_SECONDS)
        stub.fail_next(400, 10, message="(#10) permission missing")
        retrieval.backfill()

    assert [level for level, line in said(caplog) if "refused" in line] == ["ERROR", "ERROR", "ERROR"]


def test_a_refusal_alike_but_for_graphs_trace_id_of_each_call_is_not_said_anew(retrieval, store, stub, clock, caplog):
    with caplog.at_level(logging.INFO, logger="workers.meta"):
        stub.fail_next(403, 200, message=NO_LEAD_ACCESS, fbtrace_id="AbCdEfGhIjK")
        retrieval.backfill()
        clock.advance(BACKFILL_SECONDS)
        stub.fail_next(403, 200, message=NO_LEAD_ACCESS, fbtrace_id="ZyXwVuTsRqP")  # Graph gives each call its own
        retrieval.backfill()

    assert [level for level, line in said(caplog) if "refused" in line] == ["ERROR", "INFO"]
    [reason] = collect_stats(StatsQuery(store, 60, clock.now()))["retrievalRefusedForms"].values()
    assert "fbtrace_id ZyXwVuTsRqP" in reason  # the latest call's, for Meta's support


def test_a_form_that_fails_otherwise_still_fails_the_backfill_loudly(retrieval, stub):
    stub.fail_next(400, 100, message="Unsupported get request. Object does not exist.", error_subcode=33)

    with pytest.raises(GraphNotFoundError):
        retrieval.backfill()

    assert listed_forms(stub) == [FORM_ID, OTHER_FORM]


def test_the_refusal_of_a_form_no_longer_configured_is_forgotten(retrieval, store, stub, clock):
    store.refused_forms.refused("200000000000009", "Graph API 403 code 200: (#200) no lead access")

    retrieval.backfill()

    assert store.refused_forms.listed("200000000000009") is False  # nothing left to forget


def test_a_form_refused_from_its_very_first_listing_is_listed_back_to_when_the_refusal_began_once_it_may_be_read(
    retrieval, store, stub, clock
):
    first_tried = clock.now()
    stub.fail_next(403, 200, message=NO_LEAD_ACCESS)
    retrieval.backfill()  # the form's first listing ever, refused: it was never listed
    clock.advance(DAY)
    add_leads(stub, clock, ["900000000000001"])  # submitted while refused, its webhook never came
    stub.fail_next(403, 200, message=NO_LEAD_ACCESS)
    retrieval.backfill()  # still refused, a day on
    clock.advance(DAY)

    assert retrieval.backfill() == 1  # the token may read the form again

    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1
    expected = int(first_tried - BACKFILL_SECONDS - BACKFILL_OVERLAP_SECONDS)  # what its first listing would list
    assert listed_since(stub)[:3] == [expected, expected, expected]  # then on from there, a window at a time
    assert store.fetches.backfill_since(FORM_ID) == clock.now()


def test_a_form_first_listed_while_the_token_is_refused_takes_in_the_leads_of_the_whole_pause(
    retrieval, store, stub, clock
):
    stub.refuse_token()
    with pytest.raises(GraphTokenError):
        retrieval.backfill()  # the form's first listing ever pauses retrieval for every Page
    clock.advance(DAY / 2)
    add_leads(stub, clock, ["900000000000001"])
    clock.advance(DAY / 2)
    stub.accept_token()  # a new token: the next backfill is the pause's probe

    assert retrieval.backfill() == 1

    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1


def test_a_refusal_longer_than_meta_keeps_leads_is_listed_back_only_as_far_as_meta_keeps_them(retrieval, stub, clock):
    stub.fail_next(403, 200, message=NO_LEAD_ACCESS)
    retrieval.backfill()
    clock.advance(120 * DAY)

    retrieval.backfill()

    assert listed_since(stub)[1] == int(clock.now() - META_LEAD_RETENTION_SECONDS)  # then on, a window at a time


def test_a_form_configured_while_retrieval_is_paused_is_listed_from_the_first_backfill_that_had_it(
    retrieval, store, stub, clock
):
    store.fetch_pause.pause("Graph API 400 OAuthException code 190: expired", clock.now(), clock.now() + DAY)
    assert retrieval.backfill() == 0  # skipped: not the pause's probe, nothing listed
    clock.advance(DAY / 2)
    add_leads(stub, clock, ["900000000000001"])
    clock.advance(DAY / 2)

    assert retrieval.backfill() == 1  # the pause's probe

    assert list(dict.fromkeys(listed_forms(stub))) == [FORM_ID, OTHER_FORM]  # a day owed: a window at a time
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1
