"""Meta retrieval step by step: fetch, retry, pause and probe, reject, give up, sweep and backfill."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import threading

import pytest
from redis.exceptions import RedisError
from rq import Queue

from app import create_app
from app.intake import Intake
from app.meta import META_LEAD_RETENTION_SECONDS, MetaIntake
from app.metrics import StoreCollector
from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.queues import BACKFILL_META_LEADS_JOB, FETCH_META_LEAD_JOB, FETCH_QUEUE
from app.resubmit import Normalizing, Resubmitter
from app.schemas.meta import LeadgenChange
from app.sources import LeadSource, SourceKind, SourceRegistry, load_sources
from app.store import keys
from app.store.fetches import FETCH_LEASE_SECONDS
from tests.graphretrieval import BACKFILL_SECONDS, PROBE_SECONDS, meta_retrieval
from tests.metricscheck import scrape
from workers.context import build_context
from workers.graph import (
    GraphError,
    GraphLead,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRateLimitedError,
    GraphRequestError,
    GraphTimeoutError,
    GraphTokenError,
    GraphTransientError,
    GraphUnavailableError,
)
from workers.meta import MetaRetrieval, RetrievalSettings
from workers.meta_backfill import BACKFILL_OVERLAP_SECONDS, BACKFILL_WINDOW_SECONDS
from workers.retrieval_pauses import PAGE_PAUSE_LAPSE_SECONDS
from workers.runner import DeliveryTicker

PAGE_ID, FORM_ID = "100000000000001", "200000000000001"
TOKEN_ERROR = GraphTokenError("Graph API 400 OAuthException code 190/463: token expired", 400, 190)
TIMEOUT = GraphTimeoutError("Graph API did not answer in time")
RATE_LIMITED = GraphRateLimitedError("Graph API 400 OAuthException code 4: (#4) Application request limit", 400, 4)


class ScriptedGraph:
    """Answers from a script of errors first, then from its leads; remembers every call."""

    def __init__(self) -> None:
        self.leads: dict[str, GraphLead] = {}
        self.script: list[GraphError] = []
        self.calls: list[str] = []
        self.listings: list[tuple[str, float]] = []
        self.refused: dict[str, GraphError] = {}  # leadgen id -> the error every call for it answers

    def get_lead(self, leadgen_id: str) -> GraphLead:
        self.calls.append(leadgen_id)
        if self.script:
            raise self.script.pop(0)
        if leadgen_id in self.refused:
            raise self.refused[leadgen_id]
        if leadgen_id not in self.leads:
            raise GraphNotFoundError("Graph API 400 GraphMethodException code 100/33: Object does not exist", 400, 100)
        return self.leads[leadgen_id]

    def list_form_leads(self, form_id: str, since: float, until: float | None = None) -> list[GraphLead]:
        self.listings.append((form_id, since))
        if self.script:
            raise self.script.pop(0)
        return [lead for lead in self.leads.values() if lead.form_id == form_id]

    def add(self, leadgen_id: str, phone: str = "+12125550142", **answers: str) -> GraphLead:
        field_data = [{"name": "full_name", "values": ["Jane Example"]}, {"name": "phone_number", "values": [phone]}]
        field_data += [{"name": name, "values": [value]} for name, value in {"zip_code": "10001", **answers}.items()]
        lead = GraphLead(leadgen_id, "2026-01-01T00:00:00+0000", FORM_ID, tuple(field_data), ad_id="300000000000001")
        self.leads[leadgen_id] = lead
        return lead


@pytest.fixture
def source():
    return LeadSource(
        slug="fb-acme",
        kind=SourceKind.FACEBOOK,
        page_ids=(PAGE_ID,),
        form_ids=(FORM_ID,),
        source_id="src-fb",
        lead_cost=12.5,
        duplicate_window_seconds=86400,
    )


@pytest.fixture
def graph():
    return ScriptedGraph()


@pytest.fixture
def woken():
    return []


@pytest.fixture
def queued_fetches():
    """The fetch jobs admission queued: lead id -> the lease deadline each carries."""
    return {}


@pytest.fixture
def admission(store, source, clock, queued_fetches):
    return MetaIntake(store, SourceRegistry([source]), clock, queued_fetches.update)


@pytest.fixture
def retrieval(store, graph, admission, source, cipher, clock, woken):
    return meta_retrieval(store, graph, admission, SourceRegistry([source]), cipher, clock, lambda: woken.append(1))


def announce(admission, *leadgen_ids):
    admitted = admission.admit([LeadgenChange(i, page_id=PAGE_ID, form_id=FORM_ID) for i in leadgen_ids])
    return [a.lead_id for a in admitted]


def stored_record(store, cipher, lead_id, field=keys.RECORD_FIELD):
    sealed = store.redis.hget(keys.lead_key(lead_id), field)
    return None if sealed is None else cipher.open(sealed)


def test_fetch_stores_the_exact_record_queues_the_lead_and_wakes_delivery(
    retrieval, graph, admission, store, cipher, woken
):
    graph.add("900000000000001", **{"which_plan?": "plan_b"})
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED

    assert stored_record(store, cipher, lead_id) == {
        "phoneNumber": "+12125550142",
        "firstName": "Jane",
        "lastName": "Example",
        "postalCode": "10001",
        "timezone": "America/New_York",
        "state": "NY",
        "city": "New York",
        "externalId": lead_id,
        "sourceId": "src-fb",
        "leadCost": 12.5,
        "customFields": [
            {"fieldKey": "leadgen_id", "value": "900000000000001"},
            {"fieldKey": "form_id", "value": FORM_ID},
            {"fieldKey": "page_id", "value": PAGE_ID},
            {"fieldKey": "ad_id", "value": "300000000000001"},
            {"fieldKey": "tcpa_consent_at", "value": "2026-01-01T00:00:00Z"},
            {"fieldKey": "which_plan?", "value": "plan_b"},
        ],
    }
    lead = store.leads.get(lead_id)
    assert (lead.status, lead.phone_masked, lead.error) == (LeadStatus.QUEUED, "+1******0142", None)
    assert [e.status for e in lead.events] == [LeadStatus.QUEUED, LeadStatus.FETCHING]
    assert store.batches.depth() == 1 and store.fetches.waiting() == 0 and woken == [1]
    counts = store.leads.status_counts()
    assert (counts[LeadStatus.FETCHING], counts[LeadStatus.QUEUED]) == (0, 1)


def test_a_retrieved_lead_keeps_warnings_that_name_no_custom_field_key(retrieval, graph, admission, store):
    graph.add("900000000000001", **{"your_email_jane.doe@example.com": "x" * 300})
    [lead_id] = announce(admission, "900000000000001")

    retrieval.fetch(lead_id)

    assert store.leads.get(lead_id).warnings == ("customFields: expected at most 255 characters; cut",)


@pytest.mark.parametrize("question", ["externalId", "external_id", "External ID"])
def test_a_meta_answer_never_names_the_carecycle_customer_a_lead_updates(
    retrieval, graph, admission, store, cipher, question
):
    # careCycle updates the customer an externalId names: the person filling in the form must not choose it.
    graph.add("900000000000001", **{question: "cc-customer-4711"})
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED

    assert stored_record(store, cipher, lead_id)["externalId"] == lead_id
    assert store.leads.get(lead_id).external_id == lead_id
    assert store.leads.get(lead_id).warnings == (
        "externalId: not taken from a Meta lead's answers unless the source's field_map names the question; the"
        " relay's lead id is sent instead",
    )


def test_a_meta_question_the_source_maps_to_externalid_is_taken(store, graph, cipher, clock, source, woken):
    mapped = dataclasses.replace(source, field_map={"crm_id": "externalId"})
    sources = SourceRegistry([mapped])
    admission = MetaIntake(store, sources, clock, lambda lead_ids: None)
    intake = Intake(store, cipher, clock, lambda: None)
    settings = RetrievalSettings(72 * 3600, 1.0, 60.0, PROBE_SECONDS, BACKFILL_SECONDS, has_access_token=True)
    retrieval = MetaRetrieval(store, graph, intake, admission, sources, cipher, settings, clock, lambda: None)
    graph.add("900000000000001", crm_id="crm-4711")
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED

    assert stored_record(store, cipher, lead_id)["externalId"] == "crm-4711"


CROWDED = LeadSource(
    slug="fb-acme",
    kind=SourceKind.FACEBOOK,
    form_ids=(FORM_ID,),
    static_custom_fields={f"static_{n}": "v" for n in range(50)},  # as many as careCycle takes
)


@pytest.mark.parametrize("source", [pytest.param(CROWDED, id="50-static-custom-fields")])
def test_a_retrieved_lead_keeps_its_meta_provenance_and_consent_time_ahead_of_static_fields_over_the_cap(
    retrieval, graph, admission, store, cipher, source
):
    graph.leads["900000000000001"] = dataclasses.replace(
        graph.add("900000000000001", **{"which_plan?": "plan_b"}),
        adset_id="400000000000001",
        campaign_id="500000000000001",
        platform="fb",
        is_organic=False,
    )
    [lead_id] = announce(admission, "900000000000001")

    retrieval.fetch(lead_id)

    kept = [item["fieldKey"] for item in stored_record(store, cipher, lead_id)["customFields"]]
    assert kept[:41] == [f"static_{n}" for n in range(41)]
    assert set(kept[41:]) == {
        *("leadgen_id", "form_id", "page_id", "ad_id", "adset_id", "campaign_id", "platform", "is_organic"),
        "tcpa_consent_at",
    }
    assert set(kept[41:]) == source.relay_custom_keys  # what the relay adds to a facebook lead
    assert store.leads.get(lead_id).warnings == ("customFields: expected at most 50 items; 10 dropped",)


def test_delivery_never_claims_a_lead_that_is_still_fetching(admission, store, clock):
    [lead_id] = announce(admission, "900000000000001")
    store.redis.zadd(keys.ready_key(), {lead_id: clock.now()})  # as if something put it there by mistake

    assert store.batches.claim(clock.now(), 200, 30) is None
    assert store.leads.get(lead_id).status is LeadStatus.FETCHING


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(GraphTransientError("Graph API 503 without a Graph error", 503), id="transient"),
        pytest.param(GraphRequestError("Graph API 400 code 803: unexpected", 400, 803), id="unexpected"),
    ],
)
def test_a_failed_fetch_keeps_the_lead_fetching_and_retries_it_with_growing_backoff(
    retrieval, graph, admission, store, clock, error
):
    graph.add("900000000000001")
    graph.script = [error, error]
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING
    first = store.leads.get(lead_id)
    assert first.status is LeadStatus.FETCHING and first.error == error.message
    assert 0.5 <= first.next_attempt_at - clock.now() < 1.0
    assert retrieval.due_fetches() == {}
    clock.advance(1.0)
    assert retrieval.due_fetches() == {lead_id: clock.now() + FETCH_LEASE_SECONDS}

    retrieval.fetch(lead_id)
    second = store.leads.get(lead_id)
    assert 1.0 <= second.next_attempt_at - clock.now() < 2.0
    clock.advance(2.0)
    assert retrieval.due_fetches() == {lead_id: clock.now() + FETCH_LEASE_SECONDS}
    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED
    assert store.leads.get(lead_id).attempts == 0  # fetch tries do not count as delivery attempts


def test_fetches_failing_alike_but_for_graphs_trace_id_of_each_call_are_said_once(retrieval, graph, admission, caplog):
    unexpected = "Graph API 400 code 803: unexpected (fbtrace_id {trace})"
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550142")
    graph.script = [GraphRequestError(unexpected.format(trace=trace), 400, 803) for trace in ("AbCdEf001", "AbCdEf002")]
    lead_ids = announce(admission, "900000000000001", "900000000000002")

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        for lead_id in lead_ids:
            assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and "failed" in r.getMessage()]
    assert failed == [f"meta lead retrieval failed, will retry: {unexpected.format(trace='AbCdEf001')}"]


def test_a_token_error_pauses_retrieval_visibly_and_one_probe_per_interval_resumes_it(
    retrieval, graph, admission, store, clock
):
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    graph.script = [TOKEN_ERROR]
    first, second = announce(admission, "900000000000001", "900000000000002")

    assert retrieval.fetch(first) is LeadStatus.FETCHING
    pause = store.fetch_pause.get()
    assert pause.reason == TOKEN_ERROR.message and pause.next_probe_at == clock.now() + PROBE_SECONDS
    assert store.leads.get(first).error == f"retrieval paused: {TOKEN_ERROR.message}"
    assert retrieval.fetch(second) is LeadStatus.FETCHING  # its job ran during the pause: no Graph call
    assert graph.calls == ["900000000000001"]
    assert store.pause.get() is None  # delivery is not paused by Graph's token

    clock.advance(PROBE_SECONDS - 1)
    assert retrieval.due_fetches() == {}
    clock.advance(1)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.QUEUED
    assert store.fetch_pause.get() is None
    [rest] = retrieval.due_fetches()
    assert retrieval.fetch(rest) is LeadStatus.QUEUED
    assert {store.leads.get(i).status for i in (first, second)} == {LeadStatus.QUEUED}


def test_a_permission_error_for_one_page_pauses_that_page_alone_and_its_probe_resumes_it(
    retrieval, graph, admission, store, clock
):
    # One token serves every client's Page; one client withdrew the lead access of its Page.
    other_page = "100000000000002"
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    for n in range(1, 7):
        graph.add(f"90000000000000{n}", phone=f"+1212555014{n}")
    graph.refused = {"900000000000001": refused, "900000000000002": refused}
    changes = [LeadgenChange(f"90000000000000{n}", page_id=other_page, form_id=FORM_ID) for n in (1, 2)]
    first, second = [a.lead_id for a in admission.admit(changes)]
    others = announce(admission, *(f"90000000000000{n}" for n in range(3, 7)))

    assert retrieval.fetch(first) is LeadStatus.FETCHING
    assert retrieval.fetch(second) is LeadStatus.FETCHING  # its page is paused: no call
    assert [retrieval.fetch(lead_id) for lead_id in others] == [LeadStatus.QUEUED] * 4  # other Pages go on
    assert store.fetch_pause.get() is None
    assert graph.calls.count("900000000000002") == 0
    assert store.leads.get(second).error == f"retrieval paused for page {other_page}: {refused.message}"

    clock.advance(PROBE_SECONDS)
    assert {retrieval.fetch(lead_id) for lead_id in retrieval.due_fetches()} == {LeadStatus.FETCHING}
    assert len(graph.calls) == 6  # still refused: one call, the page's probe, for the interval

    graph.refused = {}  # the access is granted again
    clock.advance(PROBE_SECONDS)
    for lead_id in retrieval.due_fetches():
        retrieval.fetch(lead_id)
    clock.advance(PROBE_SECONDS)
    for lead_id in retrieval.due_fetches():
        retrieval.fetch(lead_id)
    assert {store.leads.get(lead_id).status for lead_id in (first, second)} == {LeadStatus.QUEUED}


def test_leads_held_behind_a_paused_page_are_tried_less_and_less_often_and_all_due_once_its_probe_works(
    retrieval, graph, admission, store, clock
):
    # A client withdrew its Page's lead access while 20 of its leads wait: Meta keeps them 90 days.
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    leadgen_ids = [f"9{n:014d}" for n in range(20)]
    for n, leadgen_id in enumerate(leadgen_ids):
        graph.add(leadgen_id, phone=f"+1212555{100 + n:04d}")
    graph.refused = dict.fromkeys(leadgen_ids, refused)
    lead_ids = [a.lead_id for a in admission.admit([LeadgenChange(i, "100000000000002", FORM_ID) for i in leadgen_ids])]
    for lead_id in lead_ids:
        retrieval.fetch(lead_id)

    jobs = 0
    for _ in range(60):  # ten minutes of probes refused alike
        clock.advance(PROBE_SECONDS)
        due = retrieval.due_fetches()
        jobs += len(due)
        for lead_id in due:
            retrieval.fetch(lead_id)
    assert len(graph.calls) == 1 + 60  # the first try, then one probe an interval
    assert jobs < 20 * 60 / 4  # a fetch job per held lead and interval would be 1,200

    graph.refused = {}  # the Page's owner grants the lead access again
    granted_at = clock.now()
    while store.fetches.waiting():
        clock.advance(PROBE_SECONDS)
        for lead_id in retrieval.due_fetches():
            retrieval.fetch(lead_id)
        assert clock.now() <= granted_at + 2 * PROBE_SECONDS  # the next probe, then every held lead at once
    assert {store.leads.get(lead_id).status for lead_id in lead_ids} == {LeadStatus.QUEUED}


def test_stats_name_each_page_whose_retrieval_is_paused_with_its_reason_until_it_resumes(
    retrieval, graph, admission, store, clock
):
    other_page = "100000000000002"
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    graph.add("900000000000001")
    graph.refused = {"900000000000001": refused}
    [lead_id] = [a.lead_id for a in admission.admit([LeadgenChange("900000000000001", other_page, FORM_ID)])]

    retrieval.fetch(lead_id)
    stats = collect_stats(StatsQuery(store, 60, clock.now()))
    assert stats["retrievalPausedPages"] == {other_page: refused.message}
    assert stats["retrievalPaused"] is False  # every other Page is retrieved

    graph.refused = {}
    clock.advance(PROBE_SECONDS)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.QUEUED
    assert collect_stats(StatsQuery(store, 60, clock.now()))["retrievalPausedPages"] == {}


def test_a_page_retrieval_pause_is_said_once_per_page_recalled_once_a_minute_and_its_end_once(
    retrieval, graph, admission, clock, caplog
):
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    pages = ("100000000000002", "100000000000003")
    for n in (1, 2):
        graph.add(f"90000000000000{n}", phone=f"+1212555014{n}")
    graph.refused = {"900000000000001": refused, "900000000000002": refused}
    changes = [
        LeadgenChange(f"90000000000000{n}", page_id=page, form_id=FORM_ID) for n, page in enumerate(pages, start=1)
    ]
    lead_ids = [a.lead_id for a in admission.admit(changes)]

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        for lead_id in lead_ids:
            retrieval.fetch(lead_id)
        for probe in range(7):  # a probe of each Page every 10 s, refused alike for a minute, then access is back
            if probe == 6:
                graph.refused = {}
            clock.advance(PROBE_SECONDS)
            for lead_id in retrieval.due_fetches():
                retrieval.fetch(lead_id)

    said = {page: [] for page in pages}  # each Page's lines, in order
    for record in caplog.records:
        if "for a page" in record.getMessage() and record.levelno >= logging.INFO:
            said[record.page_id].append(record.getMessage())
    assert said == {
        page: [
            f"meta lead retrieval paused for a page: {refused.message}",
            f"meta lead retrieval still paused for a page: {refused.message} (6 more probes failed alike in 60 s)",
            "meta lead retrieval resumed for a page: its leads are readable again",
        ]
        for page in pages
    }


def test_a_leads_page_costs_its_retrieval_no_redis_round_trip_while_no_page_is_paused(
    retrieval, graph, admission, round_trips
):
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    with_page, without_page = (
        a.lead_id
        for a in admission.admit(
            [LeadgenChange("900000000000001", PAGE_ID, FORM_ID), LeadgenChange("900000000000002", None, FORM_ID)]
        )
    )
    retrieval.fetch(without_page)  # Redis loads the scripts a retrieval runs
    graph.add("900000000000003", phone="+12125550144")
    [another_without_page] = [a.lead_id for a in admission.admit([LeadgenChange("900000000000003", None, FORM_ID)])]

    round_trips.clear()
    assert retrieval.fetch(another_without_page) is LeadStatus.QUEUED
    without = list(round_trips)
    round_trips.clear()
    assert retrieval.fetch(with_page) is LeadStatus.QUEUED

    assert round_trips == without


def test_a_graph_api_that_does_not_answer_in_time_pauses_retrieval_so_waiting_jobs_make_no_call(
    retrieval, graph, admission, store, clock
):
    for n in range(1, 4):
        graph.add(f"90000000000000{n}", phone=f"+1212555014{n}")
    graph.script = [TIMEOUT]
    first, *others = announce(admission, "900000000000001", "900000000000002", "900000000000003")

    assert retrieval.fetch(first) is LeadStatus.FETCHING
    pause = store.fetch_pause.get()
    assert pause.reason == TIMEOUT.message and pause.next_probe_at == clock.now() + PROBE_SECONDS
    timed_out = store.leads.get(first)
    assert timed_out.error == TIMEOUT.message and timed_out.next_attempt_at >= clock.now() + PROBE_SECONDS
    # The jobs queued for the other leads end at once, without waiting on the Graph API.
    assert [retrieval.fetch(lead_id) for lead_id in others] == [LeadStatus.FETCHING] * 2
    assert graph.calls == ["900000000000001"]
    assert store.pause.get() is None  # delivery goes on

    clock.advance(PROBE_SECONDS)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.QUEUED  # the Graph API answers again: retrieval resumes
    assert store.fetch_pause.get() is None
    assert {retrieval.fetch(lead_id) for lead_id in retrieval.due_fetches()} == {LeadStatus.QUEUED}
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 3


def test_a_rate_limited_graph_api_pauses_retrieval_so_waiting_leads_make_no_call_until_the_probe(
    retrieval, graph, admission, store, clock
):
    leadgen_ids = [f"90000000000000{n}" for n in range(1, 6)]
    for n, leadgen_id in enumerate(leadgen_ids):
        graph.add(leadgen_id, phone=f"+1212555014{n}")
    graph.script = [RATE_LIMITED]
    first, *others = announce(admission, *leadgen_ids)

    assert retrieval.fetch(first) is LeadStatus.FETCHING
    pause = store.fetch_pause.get()
    assert pause.reason == RATE_LIMITED.message and pause.next_probe_at == clock.now() + PROBE_SECONDS
    assert store.leads.get(first).next_attempt_at >= clock.now() + PROBE_SECONDS
    # Every other lead of Meta's batch waits without a call, instead of each hitting the limit again.
    assert [retrieval.fetch(lead_id) for lead_id in others] == [LeadStatus.FETCHING] * 4
    assert graph.calls == [leadgen_ids[0]]
    assert store.pause.get() is None  # delivery goes on

    clock.advance(PROBE_SECONDS)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.QUEUED  # the limit is lifted: retrieval resumes
    assert store.fetch_pause.get() is None
    assert {retrieval.fetch(lead_id) for lead_id in retrieval.due_fetches()} == {LeadStatus.QUEUED}
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 5


def test_a_graph_api_answering_5xx_pauses_retrieval_so_waiting_leads_make_no_call_until_the_probe(
    retrieval, graph, admission, store, clock
):
    outage = GraphUnavailableError("Graph API 503 without a Graph error", 503)
    leadgen_ids = [f"90000000000000{n}" for n in range(1, 6)]
    for n, leadgen_id in enumerate(leadgen_ids):
        graph.add(leadgen_id, phone=f"+1212555014{n}")
    graph.script = [outage, outage]
    first, *others = announce(admission, *leadgen_ids)

    assert retrieval.fetch(first) is LeadStatus.FETCHING
    assert store.fetch_pause.get().reason == outage.message
    assert [retrieval.fetch(lead_id) for lead_id in others] == [LeadStatus.FETCHING] * 4
    assert graph.calls == [leadgen_ids[0]]
    clock.advance(PROBE_SECONDS)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.FETCHING  # still down: one call for the interval, paused on
    assert len(graph.calls) == 2 and retrieval.due_fetches() == {}

    clock.advance(PROBE_SECONDS)
    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.QUEUED  # back: retrieval resumes
    assert store.fetch_pause.get() is None
    for _ in range(3):  # the first lead's own backoff may still run
        for lead_id in retrieval.due_fetches():
            retrieval.fetch(lead_id)
        clock.advance(PROBE_SECONDS)
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 5


def test_a_probe_that_times_out_again_keeps_retrieval_paused_one_interval_more(
    retrieval, graph, admission, store, clock
):
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    graph.script = [TIMEOUT, TIMEOUT]
    first, second = announce(admission, "900000000000001", "900000000000002")
    retrieval.fetch(first)
    since = store.fetch_pause.get().since
    clock.advance(PROBE_SECONDS)

    [probe] = retrieval.due_fetches()
    assert retrieval.fetch(probe) is LeadStatus.FETCHING

    pause = store.fetch_pause.get()
    assert pause.since == since and pause.next_probe_at == clock.now() + PROBE_SECONDS
    assert retrieval.due_fetches() == {}
    assert len(graph.calls) == 2


def test_a_lead_that_alone_times_out_backs_off_further_at_each_try(retrieval, graph, admission, store, clock):
    graph.add("900000000000001")
    graph.script = [TIMEOUT] * 8
    [lead_id] = announce(admission, "900000000000001")

    delays = []
    for _ in range(8):
        retrieval.fetch(lead_id)
        lead = store.leads.get(lead_id)
        delays.append(lead.next_attempt_at - clock.now())
        clock.advance(delays[-1])
        store.fetch_pause.resume()  # other leads' fetches, answered meanwhile, resumed retrieval

    assert all(delay >= PROBE_SECONDS for delay in delays)
    assert delays[-1] > 2 * PROBE_SECONDS  # its own backoff (up to a minute here) takes over from the probe interval
    assert store.redis.hget(keys.lead_key(lead_id), "fetch_attempts") == b"8"


def test_a_lead_graph_does_not_know_is_rejected_with_the_reason(retrieval, admission, store, clock):
    [lead_id] = announce(admission, "444444444444")

    assert retrieval.fetch(lead_id) is LeadStatus.REJECTED

    lead = store.leads.get(lead_id)
    assert lead.error.startswith("the Graph API has no such lead: Graph API 400 GraphMethodException code 100/33")
    assert store.fetches.waiting() == 0 and store.batches.depth() == 0
    assert store.redis.get(keys.failed_bucket_key(int(clock.now() // 60))) == b"1"


def test_a_lead_without_a_usable_phone_is_rejected_and_kept_for_follow_up(retrieval, graph, admission, store, cipher):
    graph.add("900000000000001", phone="555-12")
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.REJECTED

    lead = store.leads.get(lead_id)
    assert lead.error.startswith("phoneNumber: expected")
    assert stored_record(store, cipher, lead_id, keys.SUBMISSION_FIELD)["phone_number"] == ["555-12"]
    assert stored_record(store, cipher, lead_id) is None  # no careCycle record: never sent, never retried
    assert store.batches.depth() == 0


def test_a_lead_rejected_at_retrieval_is_normalized_again_once_its_field_map_is_fixed(
    retrieval, graph, admission, store, cipher, clock, source
):
    graph.add("900000000000001", phone="", contact_digits="+12125550142")  # the phone came in a question of its own
    [lead_id] = announce(admission, "900000000000001")
    assert retrieval.fetch(lead_id) is LeadStatus.REJECTED
    fixed = dataclasses.replace(source, field_map={"contact_digits": "phoneNumber"})

    def resubmit_with(lead_source):
        sources = SourceRegistry([lead_source])
        intake = Intake(store, cipher, clock, lambda: None)
        return Resubmitter(store, clock, lambda: Normalizing(cipher, sources, intake)).resubmit(lead_id)

    assert resubmit_with(source).reason.startswith("the submission still fails normalization: phoneNumber: ")
    assert resubmit_with(fixed) is None

    assert stored_record(store, cipher, lead_id)["phoneNumber"] == "+12125550142"
    assert stored_record(store, cipher, lead_id, keys.SUBMISSION_FIELD) is None
    [requeued] = store.retries.requeue([lead_id], clock.now(), "retried by alice")
    assert requeued.outcome.value == "requeued" and store.leads.get(lead_id).phone_masked == "+1******0142"


def test_a_testing_tool_lead_is_held_as_test_and_never_queued(retrieval, graph, admission, store):
    graph.add("900000000000001", phone="<test lead: dummy data for phone_number>")
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.TEST
    assert store.batches.depth() == 0


def test_the_same_person_again_within_the_window_is_a_duplicate(retrieval, graph, admission):
    graph.add("900000000000001")
    graph.add("900000000000002")
    first, second = announce(admission, "900000000000001", "900000000000002")

    assert [retrieval.fetch(first), retrieval.fetch(second)] == [LeadStatus.QUEUED, LeadStatus.DUPLICATE]


def test_a_lead_whose_try_past_the_maximum_age_fails_is_dead_with_the_reason(retrieval, graph, admission, store, clock):
    graph.script = [GraphTransientError("Graph API 503 without a Graph error", 503)] * 2
    [lead_id] = announce(admission, "900000000000001")
    retrieval.fetch(lead_id)
    clock.advance(72 * 3600)

    assert retrieval.fetch(lead_id) is LeadStatus.DEAD

    assert store.leads.get(lead_id).error == (
        "gave up retrieving after the maximum age: Graph API 503 without a Graph error"
    )
    assert graph.calls == ["900000000000001"] * 2 and store.fetches.waiting() == 0


def test_a_lead_an_operator_retries_after_the_maximum_age_counts_it_afresh_from_the_retry(
    retrieval, graph, admission, store, clock
):
    outage = GraphTransientError("Graph API 503 without a Graph error", 503)
    graph.script = [outage] * 3
    [lead_id] = announce(admission, "900000000000001")
    retrieval.fetch(lead_id)
    clock.advance(72 * 3600)
    assert retrieval.fetch(lead_id) is LeadStatus.DEAD

    store.retries.requeue([lead_id], clock.now(), "retried by alice")

    # One failure after the retry is retried with backoff, as delivery does: not `dead` at once.
    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING
    assert store.leads.get(lead_id).error == "Graph API 503 without a Graph error"
    graph.add("900000000000001")
    clock.advance(71 * 3600)  # still within the maximum age counted from the retry
    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED


def _retrieval_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "workers.meta" and r.levelno == logging.WARNING]


def test_a_graph_outage_is_warned_once_per_change_not_once_per_lead(retrieval, graph, admission, clock, caplog):
    outage = GraphTransientError("Graph API 503 without a Graph error", 503)
    graph.add("900000000000099")
    graph.script = [outage] * 40
    lead_ids = announce(admission, *(f"9000000000001{n:02d}" for n in range(40)))

    with caplog.at_level(logging.DEBUG, logger="workers.meta"):
        for lead_id in lead_ids[:30]:
            retrieval.fetch(lead_id)
        clock.advance(60)
        for lead_id in lead_ids[30:]:
            retrieval.fetch(lead_id)

    assert _retrieval_warnings(caplog) == [
        "meta lead retrieval failed, will retry: Graph API 503 without a Graph error",
        "meta lead retrievals still failing, retried with backoff: Graph API 503 without a Graph error"
        " (30 more failed alike in 60 s)",
    ]
    named = {r.lead_id for r in caplog.records if r.name == "workers.meta" and hasattr(r, "lead_id")}
    assert named == set(lead_ids)  # each failed try is still on a line (at debug) naming its lead


def test_a_retrieval_pause_is_said_when_it_starts_and_recalled_once_a_minute_not_at_every_probe(
    retrieval, graph, admission, clock, caplog
):
    graph.add("900000000000001")
    graph.script = [TOKEN_ERROR] * 7  # the first try, then a probe every 10 s refused alike for a minute
    [lead_id] = announce(admission, "900000000000001")

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        retrieval.fetch(lead_id)
        for _ in range(7):  # the last probe finds the token renewed
            clock.advance(PROBE_SECONDS)
            [probe] = retrieval.due_fetches()
            retrieval.fetch(probe)

    assert [r.getMessage() for r in caplog.records if "paused" in r.getMessage() or "resumed" in r.getMessage()] == [
        f"meta lead retrieval paused: {TOKEN_ERROR.message}",
        f"meta lead retrieval still paused: {TOKEN_ERROR.message} (6 more probes failed alike in 60 s)",
        "meta lead retrieval resumed: the Graph API answers and accepts the token again",
    ]


def test_a_graph_failure_after_a_retrieval_that_worked_is_warned_again(retrieval, graph, admission, caplog):
    outage = GraphTransientError("Graph API 503 without a Graph error", 503)
    graph.add("900000000000002")
    first, second, third = announce(admission, "900000000000001", "900000000000002", "900000000000003")
    graph.script = [outage]
    retrieval.fetch(first)
    retrieval.fetch(second)  # the Graph API answers again
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        graph.script = [outage]
        retrieval.fetch(third)

    assert _retrieval_warnings(caplog) == [
        "meta lead retrieval failed, will retry: Graph API 503 without a Graph error"
    ]


def test_a_lead_past_the_maximum_age_is_retrieved_when_its_last_try_works(retrieval, graph, admission, clock):
    graph.add("900000000000001")
    graph.script = [GraphTransientError("Graph API 503 without a Graph error", 503)]
    [lead_id] = announce(admission, "900000000000001")
    retrieval.fetch(lead_id)
    clock.advance(72 * 3600)

    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED


def test_leads_waiting_out_a_long_retrieval_pause_are_retrieved_once_the_token_works(
    retrieval, graph, admission, store, clock
):
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    graph.script = [TOKEN_ERROR]
    first, second = announce(admission, "900000000000001", "900000000000002")
    retrieval.fetch(first)
    clock.advance(73 * 3600)  # a long weekend with a broken token, past the maximum age

    statuses = [retrieval.fetch(lead_id) for lead_id in retrieval.due_fetches()]
    statuses += [retrieval.fetch(lead_id) for lead_id in retrieval.due_fetches()]

    assert statuses == [LeadStatus.QUEUED, LeadStatus.QUEUED]
    assert {store.leads.get(i).status for i in (first, second)} == {LeadStatus.QUEUED}


def test_a_wrong_appsecret_proof_pauses_retrieval_instead_of_rejecting_the_lead(retrieval, graph, admission, store):
    from workers.graph import check_response

    error = {"message": "Invalid appsecret_proof provided in the API argument", "type": "GraphMethodException"}
    with pytest.raises(GraphError) as raised:
        check_response(400, {"error": {**error, "code": 100, "fbtrace_id": "E0Jet"}})
    graph.script = [raised.value]
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.FETCHING

    assert "check FACEBOOK_APP_SECRET" in store.fetch_pause.get().reason


def test_a_lead_whose_fetch_job_was_lost_is_swept_up_again_after_its_lease(retrieval, admission, clock):
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.due_fetches() == {}
    clock.advance(FETCH_LEASE_SECONDS)
    assert retrieval.due_fetches() == {lead_id: clock.now() + FETCH_LEASE_SECONDS}
    assert retrieval.due_fetches() == {}  # taken: the next sweep waits for this job's lease
    clock.advance(FETCH_LEASE_SECONDS)
    assert retrieval.due_fetches() == {lead_id: clock.now() + FETCH_LEASE_SECONDS}


def test_a_fetch_job_queued_under_an_older_lease_makes_no_graph_call(
    retrieval, graph, admission, store, clock, queued_fetches
):
    graph.add("900000000000001")
    [lead_id] = announce(admission, "900000000000001")
    clock.advance(FETCH_LEASE_SECONDS)  # its job waited out its lease in the queue: the sweep queues another
    older, newer = queued_fetches[lead_id], retrieval.due_fetches()[lead_id]
    assert older < newer

    assert retrieval.fetch(lead_id, older) is None
    assert graph.calls == []
    assert retrieval.fetch(lead_id, newer) is LeadStatus.QUEUED
    assert graph.calls == ["900000000000001"]
    assert store.leads.get(lead_id).status is LeadStatus.QUEUED


def test_a_fetch_job_queued_under_an_older_lease_makes_no_graph_call_while_a_newer_job_fetches(
    retrieval, graph, admission, store, clock, queued_fetches
):
    graph.add("900000000000001")
    [lead_id] = announce(admission, "900000000000001")
    clock.advance(FETCH_LEASE_SECONDS)
    newer = retrieval.due_fetches()[lead_id]
    assert store.fetches.begin(lead_id, clock.now(), newer) is not None  # taken up, waiting on the Graph API

    assert retrieval.fetch(lead_id, queued_fetches[lead_id]) is None
    assert graph.calls == []
    assert store.leads.get(lead_id).status is LeadStatus.FETCHING


def test_a_fetch_job_queued_without_a_lease_takes_its_lead_up_whatever_its_lease(retrieval, graph, admission, clock):
    graph.add("900000000000001")
    [lead_id] = announce(admission, "900000000000001")
    clock.advance(FETCH_LEASE_SECONDS)
    retrieval.due_fetches()  # a sweep leased it to another job

    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED  # as a job queued by an earlier version does
    assert graph.calls == ["900000000000001"]


def test_a_second_job_for_a_lead_already_retrieved_changes_nothing(retrieval, graph, admission, store):
    graph.add("900000000000001")
    [lead_id] = announce(admission, "900000000000001")
    retrieval.fetch(lead_id)

    assert retrieval.fetch(lead_id) is None
    assert graph.calls == ["900000000000001"] and store.leads.get(lead_id).status is LeadStatus.QUEUED


def test_backfill_takes_in_only_leads_never_seen_and_lists_since_the_last_run(
    retrieval, graph, admission, store, cipher, clock
):
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    [announced] = announce(admission, "900000000000001")
    started = clock.now()

    assert retrieval.backfill() == 1

    assert graph.listings == [(FORM_ID, started - BACKFILL_SECONDS - BACKFILL_OVERLAP_SECONDS)]
    [found] = [i for i in store.redis.zrange(keys.leads_index_key(), 0, -1) if i.decode() != announced]
    lead = store.leads.get(found.decode())
    assert lead.status is LeadStatus.QUEUED and lead.events[-1].detail.startswith("found by the Meta backfill")
    assert stored_record(store, cipher, lead.id)["customFields"][0] == {
        "fieldKey": "leadgen_id",
        "value": "900000000000002",
    }
    assert store.leads.get(announced).status is LeadStatus.FETCHING  # its own job retrieves it

    clock.advance(BACKFILL_SECONDS)
    assert retrieval.backfill() == 0
    assert graph.listings[-1] == (FORM_ID, started - BACKFILL_OVERLAP_SECONDS)


def test_a_backfill_whose_worker_is_asked_to_stop_notes_the_window_in_hand_lists_no_other_and_the_next_lists_on(
    retrieval, graph, store, clock
):
    store.fetches.mark_backfilled(FORM_ID, clock.now() - 2 * 86400)  # two days owed: eight windows, then up to now
    start = clock.now() - 2 * 86400 - BACKFILL_OVERLAP_SECONDS
    graph.add("900000000000001")
    stop = threading.Event()
    list_form_leads = graph.list_form_leads

    def sigterm_during_the_third_listing(form_id, since, until=None):
        if len(graph.listings) == 2:
            stop.set()
        return list_form_leads(form_id, since, until)

    graph.list_form_leads = sigterm_during_the_third_listing

    assert retrieval.backfill(stop_requested=stop.is_set) == 1

    assert [since for _, since in graph.listings] == [start + n * BACKFILL_WINDOW_SECONDS for n in range(3)]
    assert store.fetches.backfill_listed_to(FORM_ID) == start + 3 * BACKFILL_WINDOW_SECONDS
    assert retrieval.backfill() == 0  # the lead is taken in once
    assert [since for _, since in graph.listings[3:]] == [start + n * BACKFILL_WINDOW_SECONDS for n in range(3, 9)]
    assert store.fetches.backfill_listed_to(FORM_ID) is None  # listed completely


def test_a_backfill_stopped_before_a_form_is_listed_says_no_catching_up_of_that_form(
    store, graph, cipher, clock, source, caplog
):
    other_form = "200000000000002"
    sources = SourceRegistry([dataclasses.replace(source, form_ids=(FORM_ID, other_form))])
    admission = MetaIntake(store, sources, clock, lambda lead_ids: None)
    retrieval = meta_retrieval(store, graph, admission, sources, cipher, clock, lambda: None)
    for form_id in (FORM_ID, other_form):
        store.fetches.mark_backfilled(form_id, clock.now() - 2 * 86400)  # two days owed: listed in windows
    graph.add("900000000000001")  # of the first form
    stop = threading.Event()
    listed_to = store.fetches.backfill_listed_to

    def sigterm_as_the_second_form_is_read(form_id):
        if form_id == other_form:  # after the run's last look at the stop, before the form's first listing
            stop.set()
        return listed_to(form_id)

    store.fetches.backfill_listed_to = sigterm_as_the_second_form_is_read

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        retrieval.backfill(stop_requested=stop.is_set)

    assert [form_id for form_id, _ in graph.listings] == [FORM_ID]
    said = [(r.form_id, r.getMessage()) for r in caplog.records if "catching up" in r.getMessage()]
    assert [(form_id, message.split(",")[0]) for form_id, message in said] == [
        (FORM_ID, "meta backfill of a form is catching up: listed 1 leads")
    ]
    assert listed_to(other_form) is None  # owed as before: listed from its start at the next backfill


def test_backfill_wakes_delivery_once_for_all_the_leads_it_queues(retrieval, graph, woken):
    for n in range(3):
        graph.add(f"90000000000001{n}", phone=f"+1212555014{n}")

    assert retrieval.backfill() == 3

    assert woken == [1]


def test_backfill_still_wakes_delivery_for_the_leads_it_queued_before_a_failure(retrieval, graph, woken, monkeypatch):
    for n in range(2):
        graph.add(f"90000000000002{n}", phone=f"+1212555015{n}")
    completed = []
    complete = retrieval._complete

    def fail_on_the_second(ticket, lead, **options):
        completed.append(ticket.lead_id)
        if len(completed) == 2:
            raise RedisError("connection lost")
        return complete(ticket, lead, **options)

    monkeypatch.setattr(retrieval, "_complete", fail_on_the_second)

    with pytest.raises(RedisError):
        retrieval.backfill()
    assert woken == [1]


def test_backfill_pauses_on_a_token_error_raises_and_lists_the_same_span_next_time(retrieval, graph, store, clock):
    graph.script = [TOKEN_ERROR]

    with pytest.raises(GraphTokenError):
        retrieval.backfill()

    assert store.fetch_pause.get().reason == TOKEN_ERROR.message
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time
    assert retrieval.backfill() == 0 and len(graph.listings) == 1  # skipped while paused


def test_backfill_pauses_when_a_listing_times_out_and_lists_no_other_form(store, graph, cipher, clock, source):
    sources = SourceRegistry([dataclasses.replace(source, form_ids=(FORM_ID, "200000000000002"))])
    intake = Intake(store, cipher, clock, lambda: None)
    admission = MetaIntake(store, sources, clock, lambda lead_ids: None)
    settings = RetrievalSettings(72 * 3600, 1.0, 60.0, PROBE_SECONDS, BACKFILL_SECONDS, has_access_token=True)
    retrieval = MetaRetrieval(store, graph, intake, admission, sources, cipher, settings, clock, lambda: None)
    graph.script = [TIMEOUT]

    with pytest.raises(GraphTimeoutError):
        retrieval.backfill()

    assert [form_id for form_id, _ in graph.listings] == [FORM_ID]
    assert store.fetch_pause.get().reason == TIMEOUT.message
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time


def test_backfill_pauses_when_a_listing_is_rate_limited_and_lists_the_same_span_next_time(
    retrieval, graph, store, clock
):
    graph.script = [RATE_LIMITED]

    with pytest.raises(GraphRateLimitedError):
        retrieval.backfill()

    assert store.fetch_pause.get().reason == RATE_LIMITED.message
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time
    assert retrieval.backfill() == 0 and len(graph.listings) == 1  # skipped while paused


def test_backfill_probes_a_retrieval_pause_no_lead_waits_on_and_its_listing_resumes_retrieval(
    retrieval, graph, store, clock
):
    graph.add("900000000000001")  # on Meta, its webhook never came
    graph.script = [TOKEN_ERROR]
    with pytest.raises(GraphTokenError):
        retrieval.backfill()
    clock.advance(PROBE_SECONDS)

    assert retrieval.backfill() == 1

    assert store.fetch_pause.get() is None
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1


def test_backfill_lists_every_other_form_when_one_fails(store, graph, cipher, clock, source, woken):
    other_form = "200000000000002"
    sources = SourceRegistry([dataclasses.replace(source, form_ids=(FORM_ID, other_form))])
    intake = Intake(store, cipher, clock, lambda: None)
    admission = MetaIntake(store, sources, clock, lambda lead_ids: None)
    settings = RetrievalSettings(72 * 3600, 1.0, 60.0, PROBE_SECONDS, BACKFILL_SECONDS, has_access_token=True)
    retrieval = MetaRetrieval(store, graph, intake, admission, sources, cipher, settings, clock, lambda: None)
    lead = graph.add("900000000000001")
    graph.leads[lead.id] = dataclasses.replace(lead, form_id=other_form)
    graph.script = [GraphNotFoundError("Graph API 400 GraphMethodException code 100/33: no such form", 400, 100)]

    with pytest.raises(GraphNotFoundError):
        retrieval.backfill()

    assert [form_id for form_id, _ in graph.listings] == [FORM_ID, other_form]
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time
    assert store.fetches.backfill_since(other_form) is not None


def test_backfill_of_a_form_whose_page_withdrew_lead_access_pauses_no_other_page_and_lists_the_other_forms(
    store, graph, cipher, clock, source
):
    # One token serves every client's Page; one client withdrew the lead access of its Page.
    other = dataclasses.replace(
        source, slug="fb-other", page_ids=("100000000000002",), form_ids=("200000000000002",), source_id="src-fb-2"
    )
    sources = SourceRegistry([source, other])
    intake = Intake(store, cipher, clock, lambda: None)
    admission = MetaIntake(store, sources, clock, lambda lead_ids: None)
    settings = RetrievalSettings(72 * 3600, 1.0, 60.0, PROBE_SECONDS, BACKFILL_SECONDS, has_access_token=True)
    retrieval = MetaRetrieval(store, graph, intake, admission, sources, cipher, settings, clock, lambda: None)
    lead = graph.add("900000000000001")
    graph.leads[lead.id] = dataclasses.replace(lead, form_id="200000000000002")
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    graph.script = [refused]  # the first form listed: the Page that withdrew its access

    assert retrieval.backfill() == 1  # said once, not a failed job at every interval: no Page of it is known

    assert [form_id for form_id, _ in graph.listings] == [FORM_ID, "200000000000002"]
    assert store.fetch_pause.get() is None  # every other Page's leads are retrieved
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1
    assert store.fetches.backfill_since(FORM_ID) == clock.now() - BACKFILL_SECONDS  # still owed, listed next time


def test_backfill_turn_is_taken_once_per_interval_across_workers(retrieval):
    assert [retrieval.take_backfill_turn() for _ in range(3)] == [True, False, False]


def test_ticker_queues_a_fetch_job_per_due_lead_and_the_backfill_once(settings, redis, clock, tmp_path):
    sources_file = tmp_path / "sources.toml"
    sources_file.write_text(f'[sources.fb-acme]\nkind = "facebook"\nform_ids = ["{FORM_ID}"]\n')
    worker_settings = settings.replace(leadrelay_sources=str(sources_file), facebook_access_token="token")
    context = build_context(worker_settings, redis=redis, clock=clock)
    sources = load_sources(str(sources_file), {}, {})
    [lead_id] = announce(MetaIntake(context.store, sources, clock, lambda i: None), "900000000000001")
    clock.advance(FETCH_LEASE_SECONDS)
    ticker = DeliveryTicker(context)

    assert ticker.tick_retrieval() == 2
    assert ticker.tick_retrieval() == 0

    jobs = Queue(FETCH_QUEUE, connection=redis).get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [
        (FETCH_META_LEAD_JOB, (lead_id, clock.now() + FETCH_LEASE_SECONDS)),  # the lease it was taken under
        (BACKFILL_META_LEADS_JOB, ()),
    ]


def test_a_meta_lead_that_never_got_its_record_is_retrieved_again_when_retried(
    retrieval, graph, admission, store, clock
):
    from app.ops import Operator

    [lead_id] = announce(admission, "900000000000001")
    assert retrieval.fetch(lead_id) is LeadStatus.REJECTED  # not (yet) visible to the Graph API
    graph.add("900000000000001")
    operator = Operator(store, clock, lambda: None, lambda lead_id: "no submission")

    retried = operator.retry_lead(lead_id, "alice")

    assert retried.status is LeadStatus.FETCHING and retried.error is None
    assert retrieval.due_fetches() == {lead_id: clock.now() + FETCH_LEASE_SECONDS}
    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED
    assert [(e.action, e.actor) for e in store.audit.recent(5)] == [("retry_lead", "alice")]


def test_a_lead_whose_created_time_is_out_of_range_in_utc_is_retrieved_with_the_time_as_given(
    retrieval, graph, admission, store, cipher
):
    lead = graph.add("900000000000001")
    graph.leads[lead.id] = dataclasses.replace(lead, created_time="0001-01-01T00:00:00+05:00")
    [lead_id] = announce(admission, "900000000000001")

    assert retrieval.fetch(lead_id) is LeadStatus.QUEUED
    fields = {item["fieldKey"]: item["value"] for item in stored_record(store, cipher, lead_id)["customFields"]}
    assert "0001-01-01T00:00:00+05:00" in fields.values()


def test_a_lead_meta_no_longer_keeps_is_given_up_whatever_holds_it(retrieval, graph, admission, store, clock):
    graph.add("900000000000001")
    graph.script = [TOKEN_ERROR]
    [lead_id] = announce(admission, "900000000000001")
    retrieval.fetch(lead_id)
    clock.advance(90 * 86400)

    assert retrieval.fetch(lead_id) is LeadStatus.DEAD

    assert store.leads.get(lead_id).error == "gave up retrieving: Meta keeps a lead retrievable for about 90 days"
    assert graph.calls == ["900000000000001"]


def test_a_lead_the_backfill_finds_is_counted_in_the_intake_metric_once_as_a_webhook_lead_is(
    settings, redis, clock, source, retrieval, graph
):
    app_secret = "app-secret-example"
    meta_settings = settings.replace(facebook_app_secret=app_secret)
    client = create_app(meta_settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    def counted():
        samples = scrape(client)
        return tuple(
            samples.get(("leadrelay_intake_leads_total", (("outcome", outcome), ("source", "fb-acme"))), 0)
            for outcome in ("accepted", "repeated")
        )

    before = counted()
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    body = json.dumps(
        {"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "changes": [leadgen_change("900000000000001")]}]}
    ).encode()
    signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    assert (
        client.post("/v1/webhooks/facebook", data=body, headers={"X-Hub-Signature-256": signature}).status_code == 200
    )

    assert retrieval.backfill() == 1  # 900000000000002 is new; the webhook announced 900000000000001
    clock.advance(BACKFILL_SECONDS)
    retrieval.backfill()  # both listed again: neither is new
    after = counted()

    assert (after[0] - before[0], after[1] - before[1]) == (2, 0)
    assert counted() == after  # what a scrape counted is not counted again by the next one


def leadgen_change(leadgen_id):
    return {"field": "leadgen", "value": {"leadgen_id": leadgen_id, "page_id": PAGE_ID, "form_id": FORM_ID}}


def test_backfill_takes_in_its_leads_when_redis_refuses_their_intake_count(retrieval, graph, store, woken, monkeypatch):
    graph.add("900000000000003")

    def refuse(counts):
        raise RedisError("OOM command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(store.intake_handover, "add", refuse)

    assert retrieval.backfill() == 1  # the count is lost, not the run: the lead is retrieved and queued

    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1 and woken == [1]
    assert store.fetches.backfill_since(FORM_ID) is not None


def test_a_graph_failure_after_the_graph_api_answered_that_a_lead_is_gone_is_warned_again(
    retrieval, graph, admission, caplog
):
    outage = GraphTransientError("Graph API 503 without a Graph error", 503)
    first, gone, third = announce(admission, "900000000000001", "900000000000002", "900000000000003")
    graph.script = [outage]
    retrieval.fetch(first)
    retrieval.fetch(gone)  # the Graph API answers again: it has no such lead
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="workers.meta"):
        graph.script = [outage]
        retrieval.fetch(third)

    assert "meta lead retrieval failed, will retry: Graph API 503 without a Graph error" in _retrieval_warnings(caplog)


def test_a_page_pause_ends_on_its_own_once_none_of_its_leads_is_left_to_probe_it(
    retrieval, graph, admission, store, clock
):
    # The Page's one lead is given up when Meta no longer keeps it: nothing is left to probe the Page.
    other_page = "100000000000002"
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    graph.add("900000000000001")
    graph.refused = {"900000000000001": refused}
    [lead_id] = [a.lead_id for a in admission.admit([LeadgenChange("900000000000001", other_page, FORM_ID)])]
    retrieval.fetch(lead_id)

    clock.advance(META_LEAD_RETENTION_SECONDS - 60)
    for _ in range(7):  # refused at every probe, until Meta's retention is over
        clock.advance(PROBE_SECONDS)
        for due in retrieval.due_fetches():
            retrieval.fetch(due)
    assert store.leads.get(lead_id).status is LeadStatus.DEAD
    assert collect_stats(StatsQuery(store, 60, clock.now()))["retrievalPausedPages"] == {other_page: refused.message}

    clock.advance(PAGE_PAUSE_LAPSE_SECONDS)
    assert collect_stats(StatsQuery(store, 60, clock.now()))["retrievalPausedPages"] == {}
    [gauge] = [m for m in StoreCollector(store, clock.now()).collect() if m.name == "leadrelay_retrieval_paused_pages"]
    assert gauge.samples[0].value == 0


def test_a_lead_held_for_its_page_spends_no_probe_of_the_pause_of_every_page(retrieval, graph, admission, store, clock):
    other_page = "100000000000002"
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    graph.add("900000000000001")
    graph.add("900000000000002", phone="+12125550143")
    graph.refused = {"900000000000001": refused}
    [held] = [a.lead_id for a in admission.admit([LeadgenChange("900000000000001", other_page, FORM_ID)])]
    [waiting] = announce(admission, "900000000000002")
    retrieval.fetch(held)  # its Page is paused
    store.fetch_pause.pause(TOKEN_ERROR.message, clock.now(), clock.now())  # and every Page, its probe due now
    store.page_pauses.switch(other_page).take_probe(clock.now(), PROBE_SECONDS)  # the Page's probe went just now

    assert retrieval.fetch(held) is LeadStatus.FETCHING  # held for its Page: no call
    assert graph.calls == ["900000000000001"]
    assert retrieval.fetch(waiting) is LeadStatus.QUEUED  # the probe of every Page is still there to take


def test_a_lead_waiting_out_its_pages_pause_keeps_its_history_and_says_once_since_when_it_waits(
    retrieval, graph, admission, store, clock
):
    # The Page's owner withdrew the lead access for a day: its lead is the Page's probe every interval.
    refused = GraphPermissionError("Graph API 403 OAuthException code 10: (#10) no lead access", 403, 10)
    graph.add("900000000000001")
    graph.refused = {"900000000000001": refused}
    [lead_id] = [a.lead_id for a in admission.admit([LeadgenChange("900000000000001", "100000000000002", FORM_ID)])]
    admitted_events = store.leads.get(lead_id).events
    retrieval.fetch(lead_id)
    paused_at = clock.now()
    for _ in range(40):
        clock.advance(PROBE_SECONDS)
        for due in retrieval.due_fetches():
            retrieval.fetch(due)

    events = store.leads.get(lead_id).events  # newest first
    assert events[len(events) - len(admitted_events) :] == admitted_events  # how it came in is still there
    assert [(e.at, e.detail) for e in events[: len(events) - len(admitted_events)]] == [
        (paused_at, f"retrieval paused for page 100000000000002: {refused.message}")
    ]
    assert store.leads.get(lead_id).error == f"retrieval paused for page 100000000000002: {refused.message}"
