"""Meta Lead Ads end to end: signed webhook -> worker retrieves from the Graph stand-in -> careCycle sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
from collections import Counter

import pytest

from app.models import LeadStatus
from app.store import keys
from tests.e2e.conftest import Relay
from tests.graphstub import GraphStub, serve_graph
from tests.support import wait_until

APP_SECRET = "app-secret-e2e"
PAGE_ID, FORM_ID = "100000000000001", "200000000000001"
LEADGEN_ID = "900000000000001"
SOURCES_TOML = f"""
[sources.fb-acme]
kind = "facebook"
page_ids = ["{PAGE_ID}"]
form_ids = ["{FORM_ID}"]
source_id = "src-fb-acme"
lead_cost = 12.5
"""


@pytest.fixture
def graph_stub():
    return GraphStub(app_secret=APP_SECRET)


@pytest.fixture
def meta_relay(relay_settings, real_redis, graph_stub, tmp_path):
    sources_file = tmp_path / "sources.toml"
    sources_file.write_text(SOURCES_TOML)
    with serve_graph(graph_stub) as graph_url:
        settings = relay_settings.replace(
            leadrelay_sources=str(sources_file),
            facebook_app_secret=APP_SECRET,
            facebook_verify_token="verify-e2e",
            facebook_access_token=graph_stub.token,
            facebook_graph_url=graph_url,
            facebook_connect_timeout_seconds=1.0,
            facebook_read_timeout_seconds=1.0,
        )
        relay = Relay(settings, real_redis, tmp_path)
        yield relay
        relay.stop_workers()


def add_graph_lead(graph_stub, leadgen_id=LEADGEN_ID, phone="+12125550142", created=None):
    answers = [
        {"name": "full_name", "values": ["José Example"]},
        {"name": "email", "values": ["jose.example@example.com"]},
        {"name": "phone_number", "values": [phone]},
        {"name": "zip_code", "values": ["10001"]},
        {"name": "which_plan_are_you_interested_in?", "values": ["plan_b"]},
    ]
    graph_stub.add_lead(
        leadgen_id,
        FORM_ID,
        answers,
        created=time.time() - 5 if created is None else created,
        ad_id="300000000000001",
        campaign_id="320000000000001",
        platform="fb",
        is_organic=False,
        custom_disclaimer_responses=[{"checkbox_key": "optional_1", "is_checked": "1"}],
    )


def post_leadgen(relay, leadgen_id=LEADGEN_ID):
    [lead_id] = post_leadgens(relay, [leadgen_id])
    return lead_id


def post_leadgens(relay, leadgen_ids):
    """Announce leads in one signed webhook notification; returns their lead ids."""
    changes = [
        {
            "field": "leadgen",
            "value": {"leadgen_id": i, "page_id": PAGE_ID, "form_id": FORM_ID, "created_time": int(time.time())},
        }
        for i in leadgen_ids
    ]
    body = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "changes": changes}]})
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    response = relay.client.post(
        "/v1/webhooks/facebook",
        data=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.json
    return [lead["id"] for lead in response.json["leads"]]


def received_records(sandbox, external_id):
    return [r for req in sandbox.sandbox.requests for r in req.records if r.get("externalId") == external_id]


def expected_record(graph_stub, lead_id, leadgen_id=LEADGEN_ID, page_id=PAGE_ID):
    """The careCycle record the Graph stand-in's lead must become (consent time: Graph's created_time, in UTC)."""
    consent_at = graph_stub.leads[leadgen_id]["created_time"].replace("+0000", "Z")
    page = [{"fieldKey": "page_id", "value": page_id}] if page_id else []
    return {
        "phoneNumber": "+12125550142",
        "firstName": "José",
        "lastName": "Example",
        "email": "jose.example@example.com",
        "postalCode": "10001",
        "timezone": "America/New_York",
        "state": "NY",
        "city": "New York",
        "externalId": lead_id,
        "sourceId": "src-fb-acme",
        "leadCost": 12.5,
        "customFields": [
            {"fieldKey": "leadgen_id", "value": leadgen_id},
            {"fieldKey": "form_id", "value": FORM_ID},
            *page,
            {"fieldKey": "ad_id", "value": "300000000000001"},
            {"fieldKey": "campaign_id", "value": "320000000000001"},
            {"fieldKey": "platform", "value": "fb"},
            {"fieldKey": "is_organic", "value": False},
            {"fieldKey": "tcpa_consent_at", "value": consent_at},
            {"fieldKey": "which_plan_are_you_interested_in?", "value": "plan_b"},
            {"fieldKey": "consent_optional_1", "value": True},
        ],
    }


def test_a_signed_webhook_lead_reaches_carecycle_as_exactly_this_record(meta_relay, graph_stub, sandbox):
    add_graph_lead(graph_stub)
    lead_id = post_leadgen(meta_relay)  # before the worker starts, so its first backfill finds the lead seen
    assert meta_relay.status(lead_id)["status"] == "fetching"

    meta_relay.start_worker("meta")
    wait_until(lambda: meta_relay.status(lead_id)["status"] == "delivered", timeout=15)

    assert received_records(sandbox, lead_id) == [expected_record(graph_stub, lead_id)]
    status = meta_relay.status(lead_id)
    assert [e["status"] for e in reversed(status["events"])] == ["fetching", "queued", "sending", "delivered"]
    assert status["events"][-1]["detail"] == "announced by Meta's leadgen webhook"
    assert status["phone"] == "+1******0142"
    assert len(graph_stub.requests_to(f"/{LEADGEN_ID}")) == 1


def test_a_token_error_pauses_retrieval_visibly_and_the_lead_arrives_once_the_token_works(
    meta_relay, graph_stub, sandbox
):
    add_graph_lead(graph_stub)
    graph_stub.refuse_token()
    lead_id = post_leadgen(meta_relay)
    meta_relay.start_worker("meta-paused")

    wait_until(lambda: meta_relay.store.fetch_pause.get() is not None, timeout=10)
    wait_until(lambda: len(graph_stub.requests_to(f"/{LEADGEN_ID}")) >= 2, timeout=10)  # the next probe came
    pause = meta_relay.store.fetch_pause.get()
    assert pause.reason.startswith("Graph API 400 OAuthException code 190/463: Error validating access token")
    status = meta_relay.status(lead_id)
    assert status["status"] == "fetching" and status["error"] == f"retrieval paused: {pause.reason}"
    assert meta_relay.count(LeadStatus.DEAD) == meta_relay.count(LeadStatus.REJECTED) == 0
    assert sandbox.sandbox.requests == []

    graph_stub.accept_token()
    wait_until(lambda: meta_relay.status(lead_id)["status"] == "delivered", timeout=15)

    assert meta_relay.store.fetch_pause.get() is None
    assert received_records(sandbox, lead_id) == [expected_record(graph_stub, lead_id)]


def test_the_backfill_takes_in_a_lead_whose_webhook_never_came(meta_relay, graph_stub, sandbox):
    add_graph_lead(graph_stub, leadgen_id="900000000000077")

    meta_relay.start_worker("meta-backfill")
    wait_until(lambda: sandbox.sandbox.delivered_external_ids(), timeout=15)

    [lead_id] = sandbox.sandbox.delivered_external_ids()
    # A listed lead names no page (only the webhook does), so no page_id travels with it.
    assert received_records(sandbox, lead_id) == [expected_record(graph_stub, lead_id, "900000000000077", None)]
    status = meta_relay.status(lead_id)
    assert status["events"][-1]["detail"] == "found by the Meta backfill: no webhook for it"
    listing = graph_stub.requests_to(f"/{FORM_ID}/leads")[0]
    assert json.loads(listing.query["filtering"])[0]["operator"] == "GREATER_THAN"
    assert graph_stub.requests_to("/900000000000077") == []  # completed from the listing, not fetched again


def test_a_worker_sigterm_ends_a_long_backfill_within_seconds_and_the_next_worker_lists_on_taking_each_lead_once(
    meta_relay, graph_stub, sandbox
):
    days = 80  # a form refused for weeks: 320 windows of six hours, each listing answered in a quarter of a second
    owed_since = time.time() - days * 86400
    meta_relay.store.fetches.mark_backfilled(FORM_ID, owed_since)
    for n in range(days // 2):  # a lead every two days
        created = owed_since + n * 2 * 86400 + 3600
        add_graph_lead(graph_stub, leadgen_id=f"9{n:014d}", phone=f"+1212555{100 + n:04d}", created=created)
    graph_stub.stall_every_answer(0.25)
    worker = meta_relay.start_worker("backfill-stopping", facebook_read_timeout_seconds=5.0)
    wait_until(lambda: len(graph_stub.requests_to(f"/{FORM_ID}/leads")) >= 5, timeout=30)

    asked = time.monotonic()
    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=30) == 0  # well within the grace period of 75 s, not once the span is listed
    assert time.monotonic() - asked < 15
    listed_to = meta_relay.store.fetches.backfill_listed_to(FORM_ID)
    assert listed_to is not None and listed_to > owed_since
    graph_stub.answer_promptly()
    meta_relay.redis.delete(keys.backfill_turn_key())  # the next backfill's turn, without waiting an interval
    meta_relay.start_worker("backfill-next")
    wait_until(lambda: meta_relay.store.fetches.backfill_since(FORM_ID) > time.time() - 3600, timeout=60)

    assert sum(meta_relay.store.leads.status_counts().values()) == days // 2  # each lead taken in once
    since = [json.loads(r.query["filtering"])[0]["value"] for r in graph_stub.requests_to(f"/{FORM_ID}/leads")]
    assert len(since) == len(set(since))  # no window listed twice: the second worker listed on from the first


def test_meta_leads_are_retrieved_at_once_while_delivery_is_busy_with_other_sources(meta_relay, graph_stub, sandbox):
    # careCycle answers each upload in 0.8 s while an API source posts a few leads a second: a delivery lane
    # always finds due work and runs whole slices. Fetch jobs are taken first, so Meta leads wait for one slice at most.
    sandbox.sandbox.set_faults(timeout_rate=1.0, stall_seconds=0.8)
    stop = threading.Event()

    def api_traffic() -> None:
        while not stop.is_set():
            meta_relay.post_lead()
            stop.wait(0.3)

    feeder = threading.Thread(target=api_traffic, daemon=True)
    feeder.start()
    try:
        meta_relay.start_worker("meta-busy")
        wait_until(lambda: sandbox.sandbox.requests, timeout=10)  # delivery is at work
        leadgen_ids = [f"9{n:014d}" for n in range(10)]
        for n, leadgen_id in enumerate(leadgen_ids):
            add_graph_lead(graph_stub, leadgen_id, phone=f"+1212555{100 + n:04d}")
        post_leadgens(meta_relay, leadgen_ids)

        # At most the rest of the running delivery slice (15 s), then the fetch jobs before the next slice.
        wait_until(lambda: meta_relay.count(LeadStatus.FETCHING) == 0, timeout=30)
    finally:
        stop.set()
        feeder.join()


def test_a_graph_api_that_hangs_holds_up_neither_other_delivery_nor_its_leads_once_it_answers(
    meta_relay, graph_stub, sandbox
):
    leadgen_ids = [f"9{n:014d}" for n in range(20)]
    for n, leadgen_id in enumerate(leadgen_ids):
        add_graph_lead(graph_stub, leadgen_id, phone=f"+1212555{100 + n:04d}")
    graph_stub.stall_every_answer(3.0)  # past the 1 s read timeout
    meta_ids = post_leadgens(meta_relay, leadgen_ids)  # 20 fetch jobs, queued ahead of delivery
    api_lead = meta_relay.post_lead()

    meta_relay.start_worker("meta-hanging", leadrelay_pause_probe_seconds=3.0)

    # Each fetch job waiting out the timeout would hold the worker for 20 s in all before delivery ran.
    wait_until(lambda: meta_relay.status(api_lead)["status"] == "delivered", timeout=8)
    assert len(graph_stub.requests) < 10  # the first job's call, then a probe each interval
    stats = meta_relay.stats()
    assert stats["retrievalPaused"] and stats["retrievalPause"]["reason"] == "Graph API did not answer in time"
    assert meta_relay.count(LeadStatus.FETCHING) == 20

    graph_stub.answer_promptly()
    wait_until(lambda: meta_relay.count(LeadStatus.DELIVERED) == 21, timeout=30)

    assert meta_relay.store.fetch_pause.get() is None
    assert sandbox.sandbox.delivered_external_ids() == Counter([*meta_ids, api_lead])


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        pytest.param(400, 4, "Graph API 400 GraphMethodException code 4: (stand-in) error 4", id="app-rate-limit"),
        pytest.param(503, None, "Graph API 503 without a Graph error", id="service-unavailable"),
    ],
)
def test_a_graph_api_failing_every_call_is_called_once_per_probe_not_once_per_waiting_lead(
    meta_relay, graph_stub, sandbox, status, code, reason
):
    leadgen_ids = [f"9{n:014d}" for n in range(30)]
    for n, leadgen_id in enumerate(leadgen_ids):
        add_graph_lead(graph_stub, leadgen_id, phone=f"+1212555{100 + n:04d}")
    graph_stub.fail_next(status, code, times=10_000)
    meta_ids = post_leadgens(meta_relay, leadgen_ids)

    meta_relay.start_worker("meta-failing")  # a probe each second

    wait_until(lambda: len(graph_stub.requests) >= 3, timeout=10)
    stats = meta_relay.stats()
    assert stats["retrievalPaused"] and stats["retrievalPause"]["reason"] == reason
    assert len(graph_stub.requests) <= 5  # the first call, then one probe per interval: no call per waiting lead
    assert meta_relay.count(LeadStatus.FETCHING) == 30

    with graph_stub.lock:
        graph_stub.script.clear()  # the limit is lifted, the service back
    wait_until(lambda: meta_relay.count(LeadStatus.DELIVERED) == 30, timeout=30)

    assert meta_relay.store.fetch_pause.get() is None
    assert sandbox.sandbox.delivered_external_ids() == Counter(meta_ids)
