"""The Meta backfill of a span owed for long (a form refused or failing for weeks), on a real Redis and through the
Graph stand-in over loopback HTTP: the span is listed in windows of time, oldest first, each remembered once its leads
are taken in, so that a span too long for one run completes over several, and a run cut short (a rate limit, a worker
gone) is resumed where it stopped; every lead is taken in once, none listed again but for the overlap at the end."""

from __future__ import annotations

import json
import logging

import pytest
from rq.timeouts import JobTimeoutException

from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.queues import BACKFILL_JOB_TIMEOUT_SECONDS
from app.sources import SourceRegistry
from app.store import keys
from tests.graphretrieval import ANSWERS, FORM_ID, PROBE_SECONDS, facebook_source, retrieval_over_http
from workers.graph import GraphRateLimitedError
from workers.meta_backfill import BACKFILL_OVERLAP_SECONDS, BACKFILL_RUN_BUDGET_SECONDS, BACKFILL_WINDOW_SECONDS

OTHER_FORM = "200000000000002"
DAY = 86400.0


@pytest.fixture
def sources():
    return SourceRegistry([facebook_source(form_ids=(FORM_ID, OTHER_FORM))])


def owe(store, clock, days):
    """The form was last listed completely `days` ago (refused since, say); returns where its listing starts."""
    store.fetches.mark_backfilled(FORM_ID, clock.now() - days * DAY)
    return clock.now() - days * DAY - BACKFILL_OVERLAP_SECONDS


def add_span_leads(stub, start, days):
    """Leads of the form over `days` from `start`: a few a day, and one at, before and after each window's end (where
    one window meets the next). Returns their leadgen ids."""
    times = [start + n * 3 * 3600 + 17 for n in range(int(days * 8))]  # every three hours
    for k in range(1, int(days * DAY // BACKFILL_WINDOW_SECONDS)):
        meeting = int(start + k * BACKFILL_WINDOW_SECONDS)
        times += [meeting - 1, meeting, meeting + 1]
    ids = []
    for n, created in enumerate(times):
        leadgen_id = f"9{n:014d}"
        phone = {"name": "phone_number", "values": [f"+1212555{n % 10000:04d}"]}
        stub.add_lead(leadgen_id, FORM_ID, [*ANSWERS, phone], created)
        ids.append(leadgen_id)
    return ids


def taken_in(store):
    """The leadgen id of every lead in the store, once per lead."""
    lead_ids = [i.decode() for i in store.redis.zrange(keys.leads_index_key(), 0, -1)]
    return sorted(store.redis.hget(keys.lead_key(i), keys.LEADGEN_ID_FIELD).decode() for i in lead_ids)


def listings(stub, form_id=FORM_ID):
    """Each listing's (after, before) of `form_id` from its `filtering` (None: no upper end), one per Graph call."""
    spans = []
    for request in stub.requests_to("/leads"):
        if request.path.split("/")[-2] != form_id:
            continue
        rules = {rule["operator"]: rule["value"] for rule in json.loads(request.query["filtering"])}
        spans.append((rules["GREATER_THAN"], rules.get("LESS_THAN")))
    return spans


def assert_listed_once_in_order(spans, start):
    """The listings follow one another, oldest first, each from where the last ended: no lead between them left out,
    none listed twice."""
    assert spans[0][0] == int(start)
    for (_, before), (after, _) in zip(spans, spans[1:], strict=False):
        assert after == before - 1  # listed up to `before - 1`, then from after it
    assert spans[-1][1] is None  # the last up to now


def catching_up(store, clock):
    return collect_stats(StatsQuery(store, 60, clock.now()))["backfillCatchingUp"]


class TakingTime:
    """A Graph client each of whose listings takes `seconds` (of the test's clock): a busy form's pages."""

    def __init__(self, graph, clock, seconds):
        self._graph, self._clock, self._seconds = graph, clock, seconds

    def get_lead(self, leadgen_id):
        return self._graph.get_lead(leadgen_id)

    def list_form_leads(self, form_id, since, until=None):
        self._clock.advance(self._seconds)
        return list(self._graph.list_form_leads(form_id, since, until))


class GoneAfter:
    """A Graph client whose worker is gone (its job's timeout) during its listing number `calls` + 1."""

    def __init__(self, graph, calls):
        self._graph, self._left = graph, calls

    def get_lead(self, leadgen_id):
        return self._graph.get_lead(leadgen_id)

    def list_form_leads(self, form_id, since, until=None):
        if self._left == 0:
            raise JobTimeoutException("Task exceeded maximum timeout value (900 seconds)")
        self._left -= 1
        return list(self._graph.list_form_leads(form_id, since, until))


def test_a_span_too_long_for_one_run_completes_over_several_taking_in_every_lead_once(
    store, stub, sources, cipher, clock, caplog
):
    start = owe(store, clock, 20)
    ids = add_span_leads(stub, start, 20)
    runs = 0

    def slow(graph):  # four listings fit in a run's budget: its first window, the other form's, two more of its
        return TakingTime(graph, clock, BACKFILL_RUN_BUDGET_SECONDS / 4)

    with (
        caplog.at_level(logging.INFO, logger="workers.meta"),
        retrieval_over_http(store, stub, sources, cipher, clock, around=slow) as retrieval,
    ):
        while store.fetches.backfill_since(FORM_ID) < clock.now() - DAY and runs < 50:
            retrieval.backfill()
            runs += 1
            if runs == 1:
                assert catching_up(store, clock) == {FORM_ID: start + 3 * BACKFILL_WINDOW_SECONDS}

    assert runs > 1  # the span did not fit in one run's budget
    assert taken_in(store) == sorted(ids)  # every lead, once
    assert store.leads.status_counts()[LeadStatus.QUEUED] == len(ids)
    assert_listed_once_in_order(listings(stub), start)
    assert len(listings(stub)) == 20 * DAY // BACKFILL_WINDOW_SECONDS + 1  # one call a window: no run started over
    assert len(listings(stub, OTHER_FORM)) == runs  # the form owed little is listed at every run all the same
    said = [r for r in caplog.records if "catching up" in r.getMessage()]
    assert len(said) == runs - 1 and {r.form_id for r in said} == {FORM_ID}
    assert store.fetches.backfill_listed_to(FORM_ID) is None  # listed completely: nothing left to resume
    assert catching_up(store, clock) == {}


def test_every_form_is_listed_once_before_one_owed_for_long_lists_on_so_that_the_run_ends_within_its_timeout(
    store, stub, sources, cipher, clock
):
    owe(store, clock, 20)
    store.fetches.mark_backfilled(OTHER_FORM, clock.now() - 20 * DAY)  # both owe weeks: a token refused since, say
    began = clock.now()

    def slow(graph):  # a busy form's window: a little less than the run's budget
        return TakingTime(graph, clock, BACKFILL_RUN_BUDGET_SECONDS * 0.9)

    with retrieval_over_http(store, stub, sources, cipher, clock, around=slow) as retrieval:
        retrieval.backfill()

    assert [request.path.split("/")[-2] for request in stub.requests_to("/leads")] == [FORM_ID, OTHER_FORM]
    assert clock.now() - began <= BACKFILL_JOB_TIMEOUT_SECONDS
    assert set(catching_up(store, clock)) == {FORM_ID, OTHER_FORM}


def test_a_backfill_cut_short_by_a_rate_limit_resumes_where_it_stopped(retrieval, store, stub, clock):
    start = owe(store, clock, 5)
    ids = add_span_leads(stub, start, 5)
    # Its first window, the other form listed, then its next six: its eighth window is refused.
    stub.fail_next(400, 4, message="(#4) Application request limit reached", after=8)

    with pytest.raises(GraphRateLimitedError):
        retrieval.backfill()
    assert store.fetches.backfill_listed_to(FORM_ID) == start + 7 * BACKFILL_WINDOW_SECONDS
    clock.advance(PROBE_SECONDS)
    retrieval.backfill()  # the pause's probe

    assert taken_in(store) == sorted(ids)
    spans = listings(stub)
    assert spans[7] == spans[8]  # the window refused, listed again; none before it
    assert_listed_once_in_order(spans[:8] + spans[9:], start)
    assert len(spans) == 5 * DAY // BACKFILL_WINDOW_SECONDS + 2
    assert store.fetch_pause.get() is None


def test_a_backfill_whose_worker_is_gone_midway_is_resumed_by_the_next_from_where_it_got(
    store, stub, sources, cipher, clock
):
    start = owe(store, clock, 5)
    ids = add_span_leads(stub, start, 5)

    with retrieval_over_http(store, stub, sources, cipher, clock, around=lambda g: GoneAfter(g, 11)) as retrieval:
        with pytest.raises(JobTimeoutException):
            retrieval.backfill()
    clock.advance(15 * 60)
    with retrieval_over_http(store, stub, sources, cipher, clock) as next_worker:
        next_worker.backfill()

    assert taken_in(store) == sorted(ids)
    spans = listings(stub)
    assert len(spans) == 5 * DAY // BACKFILL_WINDOW_SECONDS + 1  # the 11 windows listed are not listed again
    assert_listed_once_in_order(spans, start)


def test_how_far_the_listing_of_a_form_no_longer_configured_had_come_is_forgotten(retrieval, store, clock):
    store.fetches.note_backfill_listed("200000000000009", clock.now() - 30 * DAY)  # dropped from its source since

    retrieval.backfill()

    assert store.fetches.backfill_listed_to("200000000000009") is None
    assert catching_up(store, clock) == {}
