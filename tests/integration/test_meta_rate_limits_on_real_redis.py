"""Meta retrieval meeting Graph's rate limits on a real Redis, through the Graph client and the Graph stand-in over
loopback HTTP: paused until Graph's estimate of the limit's end (bounded), said so in stats and logs, and a malformed
usage header costing no lead."""

from __future__ import annotations

import json
import logging
import random

import pytest

from app.intake import Intake
from app.meta import MetaIntake
from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.schemas.meta import LeadgenChange
from app.sources import LeadSource, SourceKind, SourceRegistry
from tests.graphstub import GraphStub, serve_graph
from workers.graph import GraphClient, GraphRateLimitedError
from workers.meta import MetaRetrieval, RetrievalSettings
from workers.retrieval_pauses import MAX_RATE_LIMIT_PAUSE_SECONDS

PAGE_ID, FORM_ID, BUSINESS_ID = "100000000000001", "200000000000001", "555000000000001"
PROBE_SECONDS = 10.0
ANSWERS = [{"name": "full_name", "values": ["Jane Example"]}, {"name": "zip_code", "values": ["10001"]}]


def usage_headers(minutes):
    use_case = {"type": "leadgen", "call_count": 100, "total_cputime": 5, "total_time": 9}
    return {
        "X-Business-Use-Case-Usage": json.dumps(
            {BUSINESS_ID: [{**use_case, "estimated_time_to_regain_access": minutes}]}
        )
    }


@pytest.fixture
def stub():
    return GraphStub()


@pytest.fixture
def source():
    return LeadSource(slug="fb-acme", kind=SourceKind.FACEBOOK, page_ids=(PAGE_ID,), form_ids=(FORM_ID,))


@pytest.fixture
def admission(store, source, clock):
    return MetaIntake(store, SourceRegistry([source]), clock, lambda jobs: None)


@pytest.fixture
def retrieval(store, stub, admission, source, cipher, clock):
    sources = SourceRegistry([source])
    settings = RetrievalSettings(
        max_age_seconds=72 * 3600,
        retry_base_seconds=1.0,
        retry_max_delay_seconds=60.0,
        probe_interval_seconds=PROBE_SECONDS,
        backfill_interval_seconds=900.0,
        has_access_token=True,
    )
    intake = Intake(store, cipher, clock, lambda: None, person_memory_seconds=sources.person_memory_seconds)
    with serve_graph(stub) as url:
        graph = GraphClient(url, "v21.0", stub.token, connect_timeout=1, read_timeout=2)
        yield MetaRetrieval(
            store, graph, intake, admission, sources, cipher, settings, clock, lambda: None, random.Random(7)
        )
        graph.close()


def announce(stub, admission, clock, count):
    leadgen_ids = [f"90000000000000{n}" for n in range(count)]
    for n, leadgen_id in enumerate(leadgen_ids):
        phone = {"name": "phone_number", "values": [f"+1212555014{n}"]}
        stub.add_lead(leadgen_id, FORM_ID, [*ANSWERS, phone], clock.now() - 60)
    return [
        a.lead_id for a in admission.admit([LeadgenChange(i, page_id=PAGE_ID, form_id=FORM_ID) for i in leadgen_ids])
    ]


def test_a_rate_limit_pauses_retrieval_until_graph_expects_access_again_and_stats_and_logs_say_so(
    retrieval, stub, admission, store, clock, caplog
):
    first, *others = announce(stub, admission, clock, 3)
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


def test_an_estimate_past_an_hour_pauses_retrieval_an_hour_and_then_probes(retrieval, stub, admission, store, clock):
    [lead_id] = announce(stub, admission, clock, 1)
    stub.fail_next(400, 80001, headers=usage_headers(24 * 60))
    started = clock.now()

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert store.fetch_pause.get().next_probe_at == started + MAX_RATE_LIMIT_PAUSE_SECONDS == started + 3600
    clock.advance(MAX_RATE_LIMIT_PAUSE_SECONDS)
    assert retrieval.fetch(*retrieval.due_fetches()) is LeadStatus.QUEUED


def test_an_estimate_shorter_than_the_probe_interval_waits_the_interval(retrieval, stub, admission, store, clock):
    [lead_id] = announce(stub, admission, clock, 1)
    stub.fail_next(400, 80001, headers=usage_headers(0))

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert store.fetch_pause.get().next_probe_at == clock.now() + PROBE_SECONDS


def test_a_malformed_usage_header_pauses_one_probe_interval_and_loses_no_lead(retrieval, stub, admission, store, clock):
    [lead_id] = announce(stub, admission, clock, 1)
    stub.fail_next(400, 80001, headers={"X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": "x'})

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert store.fetch_pause.get().next_probe_at == clock.now() + PROBE_SECONDS
    clock.advance(PROBE_SECONDS)
    assert retrieval.fetch(*retrieval.due_fetches()) is LeadStatus.QUEUED


def test_a_rate_limited_backfill_pauses_retrieval_until_graphs_estimate_and_lists_again_then(
    retrieval, stub, store, clock
):
    stub.add_lead(
        "900000000000001", FORM_ID, [*ANSWERS, {"name": "phone_number", "values": ["+12125550142"]}], clock.now() - 60
    )
    stub.fail_next(400, 80005, headers=usage_headers(7))

    with pytest.raises(GraphRateLimitedError):
        retrieval.backfill()

    assert store.fetch_pause.get().next_probe_at == clock.now() + 7 * 60
    clock.advance(6 * 60)
    assert retrieval.backfill() == 0 and len(stub.requests) == 1  # skipped: Graph expects the limit for a minute more
    clock.advance(60)
    assert retrieval.backfill() == 1 and store.fetch_pause.get() is None
