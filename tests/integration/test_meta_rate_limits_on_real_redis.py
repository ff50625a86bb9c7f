"""Meta retrieval meeting Graph's rate limits on a real Redis, through the Graph client and the Graph stand-in over
loopback HTTP: paused until Graph's estimate of the limit's end (bounded), said so in stats and logs, and a malformed
usage header costing no lead."""

from __future__ import annotations

import json
import logging

import pytest

from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.sources import SourceRegistry
from tests.graphretrieval import PROBE_SECONDS, add_leads, announce, facebook_source, retrieval_over_http
from workers.graph import GraphRateLimitedError
from workers.retrieval_pauses import MAX_RATE_LIMIT_PAUSE_SECONDS

BUSINESS_ID = "555000000000001"


def usage_headers(minutes):
    use_case = {"type": "leadgen", "call_count": 100, "total_cputime": 5, "total_time": 9}
    use_case["estimated_time_to_regain_access"] = minutes
    return {"X-Business-Use-Case-Usage": json.dumps({BUSINESS_ID: [use_case]})}


@pytest.fixture
def sources():
    return SourceRegistry([facebook_source()])


@pytest.fixture
def announced(store, stub, sources, clock):
    def announced(count):
        leadgen_ids = [f"90000000000000{n}" for n in range(count)]
        add_leads(stub, clock, leadgen_ids)
        return announce(store, sources, clock, leadgen_ids)

    return announced


def test_a_rate_limit_pauses_retrieval_until_graph_expects_access_again_and_stats_and_logs_say_so(
    retrieval, stub, announced, store, clock, caplog
):
    first, *others = announced(3)
    stub.fail_next(400, 80005, headers=usage_headers(19))
    started = clock.now()

    with caplog.at_level(logging.WARNING, logger="workers.meta"):
        assert retrieval.fetch(first) is LeadStatus.FETCHING

    pause = store.fetch_pause.get()
    assert pause.next_probe_at == started + 19 * 60
    assert store.leads.get(first).next_attempt_at >= started + 19 * 60
    retrieval_pause = collect_stats(StatsQuery(store, 60, clock.now()))["retrievalPause"]
    assert retrieval_pause["nextProbeAt"] == started + 19 * 60
    assert retrieval_pause["reason"].endswith(
        "Graph estimates access again in 19 min (business use case leadgen at call_count 100%, total_cputime 5%, "
        "total_time 9%)"
    )
    [line] = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert "access again in 19 min" in line and BUSINESS_ID not in line and stub.token not in line

    # Probe after probe interval would each count against the limit: none goes before Graph's estimate.
    assert [retrieval.fetch(lead_id) for lead_id in others] == [LeadStatus.FETCHING] * 2
    clock.advance(10 * PROBE_SECONDS)
    assert retrieval.due_fetches() == {}
    assert len(stub.requests) == 1

    clock.advance(19 * 60 - 10 * PROBE_SECONDS)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.QUEUED
    assert {retrieval.fetch(lead_id) for lead_id in retrieval.due_fetches()} == {LeadStatus.QUEUED}
    assert store.fetch_pause.get() is None and store.leads.status_counts()[LeadStatus.QUEUED] == 3


def test_an_estimate_past_an_hour_pauses_retrieval_an_hour_and_then_probes(retrieval, stub, announced, store, clock):
    [lead_id] = announced(1)
    stub.fail_next(400, 80001, headers=usage_headers(24 * 60))
    started = clock.now()

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert store.fetch_pause.get().next_probe_at == started + MAX_RATE_LIMIT_PAUSE_SECONDS == started + 3600
    clock.advance(MAX_RATE_LIMIT_PAUSE_SECONDS)
    assert retrieval.fetch(*retrieval.due_fetches()) is LeadStatus.QUEUED


def test_an_estimate_shorter_than_the_probe_interval_waits_the_interval(retrieval, stub, announced, store, clock):
    [lead_id] = announced(1)
    stub.fail_next(400, 80001, headers=usage_headers(0))

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert store.fetch_pause.get().next_probe_at == clock.now() + PROBE_SECONDS


def test_a_malformed_usage_header_pauses_one_probe_interval_and_loses_no_lead(retrieval, stub, announced, store, clock):
    [lead_id] = announced(1)
    stub.fail_next(400, 80001, headers={"X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": "x'})

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert store.fetch_pause.get().next_probe_at == clock.now() + PROBE_SECONDS
    clock.advance(PROBE_SECONDS)
    assert retrieval.fetch(*retrieval.due_fetches()) is LeadStatus.QUEUED


def test_a_rate_limited_backfill_pauses_retrieval_until_graphs_estimate_and_lists_again_then(
    retrieval, stub, store, clock
):
    add_leads(stub, clock, ["900000000000001"])
    stub.fail_next(400, 80005, headers=usage_headers(7))

    with pytest.raises(GraphRateLimitedError):
        retrieval.backfill()

    assert store.fetch_pause.get().next_probe_at == clock.now() + 7 * 60
    clock.advance(6 * 60)
    assert retrieval.backfill() == 0 and len(stub.requests) == 1  # skipped: Graph expects the limit for a minute more
    clock.advance(60)
    assert retrieval.backfill() == 1 and store.fetch_pause.get() is None


class AnsweredAfterAnotherCall:
    """A Graph client whose answer for one lead comes only after `meanwhile` ran: another worker's call answered while
    this one was in flight."""

    def __init__(self, graph, slow_leadgen_id, meanwhile):
        self._graph, self._slow, self._meanwhile = graph, slow_leadgen_id, meanwhile

    def get_lead(self, leadgen_id):
        if leadgen_id == self._slow:
            self._meanwhile()
        return self._graph.get_lead(leadgen_id)

    def list_form_leads(self, form_id, since, until=None):
        return self._graph.list_form_leads(form_id, since, until)


def test_a_failure_met_by_a_call_in_flight_as_a_rate_limit_paused_retrieval_keeps_graphs_estimate(
    stub, sources, store, cipher, clock, announced
):
    in_flight, rate_limited = announced(2)
    stub.fail_next(400, 80005, headers=usage_headers(19))  # answered first: the other worker's call
    stub.fail_next(503, 2, message="temporary downtime")  # then the call that was in flight
    started = clock.now()

    with retrieval_over_http(store, stub, sources, cipher, clock) as other_worker:

        def around(graph):
            return AnsweredAfterAnotherCall(graph, "900000000000000", lambda: other_worker.fetch(rate_limited))

        with retrieval_over_http(store, stub, sources, cipher, clock, around) as worker:
            assert worker.fetch(in_flight) is LeadStatus.FETCHING

    pause = store.fetch_pause.get()
    assert pause.next_probe_at == started + 19 * 60  # not a probe interval on: each probe counts against the limit
    assert store.leads.get(in_flight).next_attempt_at >= started + 19 * 60
    shown = collect_stats(StatsQuery(store, 60, clock.now()))["retrievalPause"]
    assert shown["nextProbeAt"] == started + 19 * 60
    assert "Graph estimates access again in 19 min" in shown["reason"] and "temporary downtime" in shown["reason"]
