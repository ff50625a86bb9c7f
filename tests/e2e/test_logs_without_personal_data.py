"""Logs never carry personal data or secrets, whatever the intake kind and whatever becomes of the lead.

Leads with distinctive personal data go in through the API (valid and invalid), a web form, a Google
webhook and a Meta webhook (retrieved from the Graph stand-in); one is refused by careCycle. Others are refused
at the door (a Google delivery with a wrong key or no lead in it, a multipart form cut off) or carry personal
data where names go (field names, custom field keys cut or repeated, which warnings name). The web tier's log
lines (captured in-process, formatted as in production) and the workers' log files must not contain any of it,
nor any secret; every web line carries its request id. The status API, which operators and the dashboard read,
shows of a lead only its masked phone and ids: none of it either.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import logging
import time
from pathlib import Path

import pytest

from app.logs import JsonFormatter, LogIdsFilter
from app.models import LeadStatus
from tests.conftest import CARECYCLE_KEY, OPS_TOKEN, SOURCE_KEY
from tests.e2e.conftest import Relay
from tests.graphstub import GraphStub, serve_graph
from tests.intake_support import PRODUCTION_LEAD
from tests.support import wait_until

APP_SECRET = "meta-app-secret-4c1f"
VERIFY_TOKEN = "meta-verify-token-77aa"
GOOGLE_KEY = "google-key-9e3b2d"
WRONG_GOOGLE_KEY = "google-key-presented-by-someone-else-41d7"
PAGE_ID, FORM_ID, LEADGEN_ID = "100000000000009", "200000000000009", "900000000000009"
LANDING = "https://landing.example.com"

PERSONAL = {
    "names": ["Zebedee", "Quixotte", "Ophelia", "Marchbanks", "Ignatius", "Reilly", "Perpetua", "Honeychurch"],
    "emails": ["zebedee.q@example.com", "ophelia.m@example.com", "ignatius.r@example.com", "perpetua.h@example.com"],
    "phones": ["3125550177", "4155550163", "6175550148", "2065550139", "7185550122"],
    "dates of birth": ["07-04-1952", "1952-07-04", "7/4/1952", "02-29-1948"],
    "medicare ids": ["1EG4TE5MK73", "1EG4-TE5-MK73", "2FH5UF6NK84", "2FH5-UF6-NK84"],  # as sent, and as forwarded
}
SOURCES_TOML = f"""
[sources.landing]
kind = "form"
allowed_origins = ["{LANDING}"]

[sources.gads]
kind = "google"
secret_env = "PII_TEST_GOOGLE_KEY"

[sources.fb]
kind = "facebook"
page_ids = ["{PAGE_ID}"]
form_ids = ["{FORM_ID}"]
"""


@pytest.fixture
def captured_web_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogIdsFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


@pytest.fixture
def world(relay_settings, real_redis, sandbox, tmp_path):
    graph = GraphStub(app_secret=APP_SECRET)
    sources = tmp_path / "sources.toml"
    sources.write_text(SOURCES_TOML)
    with serve_graph(graph) as graph_url:
        settings = relay_settings.replace(
            leadrelay_sources=str(sources),
            environ={**relay_settings.environ, "PII_TEST_GOOGLE_KEY": GOOGLE_KEY},
            facebook_app_secret=APP_SECRET,
            facebook_verify_token=VERIFY_TOKEN,
            facebook_access_token=graph.token,
            facebook_graph_url=graph_url,
        )
        relay = Relay(settings, real_redis, tmp_path)
        yield relay, graph
        relay.stop_workers()


def post_everything(relay: Relay, graph: GraphStub, sandbox) -> int:
    client = relay.client
    sandbox.sandbox.set_faults(reject_phones=["2065550139"])
    api = {"X-Api-Key": SOURCE_KEY}
    leads = [
        {
            "full_name": "Zebedee Quixotte",
            "phone": "(312) 555-0177",
            "email": "zebedee.q@example.com",
            "zip": "10001",
            "dob": "7/4/1952",
            "medicare_id": "1EG4TE5MK73",
        },
        {
            "first_name": "Perpetua",
            "last_name": "Honeychurch",
            "phone": "206-555-0139",
            "zip": "60601",
            "email": "perpetua.h@example.com",
            "mbi": "2FH5UF6NK84",
        },
    ]
    assert client.post("/v1/leads", json={"leads": leads}, headers=api).status_code == 202
    bad = {"first_name": "Zebedee", "phone": "555-12", "dob": "02-30-1952", "email": "zebedee.q@example.com"}
    assert client.post("/v1/leads", json=bad, headers=api).status_code == 422
    form = "first_name=Ophelia&last_name=Marchbanks&phone=%28415%29+555-0163&zip=10001&email=ophelia.m%40example.com"
    response = client.post(
        "/v1/forms/landing", data=form, content_type="application/x-www-form-urlencoded", headers={"Origin": LANDING}
    )
    assert response.status_code in (202, 303)
    google = copy.deepcopy(PRODUCTION_LEAD) | {"google_key": GOOGLE_KEY, "lead_id": "pii-test-lead-1"}
    google["user_column_data"] = [
        {"column_id": "FULL_NAME", "column_name": "Full Name", "string_value": "Ignatius Reilly"},
        {"column_id": "EMAIL", "column_name": "Email", "string_value": "ignatius.r@example.com"},
        {"column_id": "PHONE_NUMBER", "column_name": "Phone", "string_value": "+16175550148"},
        {"column_id": "POSTAL_CODE", "column_name": "Zip", "string_value": "02134"},
    ]
    assert client.post("/v1/webhooks/google/gads", json=google).status_code == 200
    graph.add_lead(
        LEADGEN_ID,
        FORM_ID,
        [
            {"name": "full_name", "values": ["Ophelia Marchbanks"]},
            {"name": "phone_number", "values": ["+17185550122"]},
            {"name": "email", "values": ["ophelia.m@example.com"]},
            {"name": "date_of_birth", "values": ["02/29/1948"]},
            {"name": "zip_code", "values": ["10001"]},
        ],
        created=time.time() - 5,
    )
    change = {"leadgen_id": LEADGEN_ID, "page_id": PAGE_ID, "form_id": FORM_ID, "created_time": int(time.time())}
    body = json.dumps(
        {"object": "page", "entry": [{"id": PAGE_ID, "changes": [{"field": "leadgen", "value": change}]}]}
    )
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    response = client.post(
        "/v1/webhooks/facebook",
        data=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert client.get("/v1/stats", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).status_code == 200
    return 5  # leads that reach a final state: 2 API, 1 form, 1 Google, 1 Meta


def post_refused_and_named_with_personal_data(relay: Relay) -> int:
    """Deliveries refused at the door, and leads whose field names and custom field keys hold personal data."""
    client = relay.client
    named = {
        "full_name": 'Dr. Ignatius "Iggy" Reilly, RN',
        "phone": "Cell (617) 555-0148",
        "email": "Ignatius Reilly <ignatius.r@example.com>",
        "zip": "02134",
        "zebedee.q@example.com": "a field named after what was typed",
        "customFields": {
            "Ophelia Marchbanks " + "x" * 100: "a key cut to careCycle's 100 characters",
            "perpetua.h@example.com": "y" * 300,  # a value cut, which its warning names by key
        },
        "Perpetua Honeychurch": ["a list", {"that is": "no custom value"}],
    }
    response = client.post("/v1/leads", json=named, headers={"X-Api-Key": SOURCE_KEY})
    assert response.status_code == 202
    assert any("perpetua.h@example.com" in warning for warning in response.json["warnings"])  # the sender's own
    google = copy.deepcopy(PRODUCTION_LEAD) | {"google_key": GOOGLE_KEY, "lead_id": "pii-test-lead-2"}
    google["user_column_data"] = [
        {"column_id": "PHONE_NUMBER", "column_name": "Phone", "string_value": "+14155550163"},
        {"column_id": "POSTAL_CODE", "column_name": "Zip", "string_value": "10001"},
        {"column_id": "q1", "column_name": "Zebedee Quixotte", "string_value": "a first answer"},
        {"column_id": "q1", "column_name": "Zebedee Quixotte", "string_value": "a second answer"},
        {"column_id": "q1", "column_name": "Zebedee Quixotte", "string_value": "a third answer"},
    ]
    assert client.post("/v1/webhooks/google/gads", json=google).status_code == 200
    wrong_key = copy.deepcopy(google) | {"google_key": WRONG_GOOGLE_KEY, "lead_id": "pii-test-lead-3"}
    assert client.post("/v1/webhooks/google/gads", json=wrong_key).status_code == 403
    no_lead = {key: value for key, value in google.items() if key != "lead_id"}
    assert client.post("/v1/webhooks/google/gads", json=no_lead).status_code == 422
    cut_off = (
        b'--b0undary\r\nContent-Disposition: form-data; name="first_name"\r\n\r\nOphelia\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="phone"\r\n\r\n(415) 555-0163'
    )
    response = client.post(
        "/v1/forms/landing",
        data=cut_off,
        content_type="multipart/form-data; boundary=b0undary",
        headers={"Origin": LANDING},
    )
    assert response.status_code == 400
    return 2  # leads that reach a final state: 1 API, 1 Google


def status_answers(relay: Relay) -> str:
    """Everything the status API answers about the leads: the list, and each lead's own status."""
    ops = {"Authorization": f"Bearer {OPS_TOKEN}"}
    listed = relay.client.get("/v1/leads?limit=100", headers=ops)
    assert listed.status_code == 200
    ids = [lead["id"] for lead in listed.json["leads"]]
    return listed.get_data(as_text=True) + "".join(json.dumps(relay.status(lead_id)) for lead_id in ids)


def test_no_personal_data_or_secret_appears_in_any_log_line(world, sandbox, captured_web_logs, tmp_path: Path):
    relay, graph = world
    relay.start_worker("pii-1")
    expected = post_everything(relay, graph, sandbox) + post_refused_and_named_with_personal_data(relay)
    wait_until(lambda: relay.count(LeadStatus.DELIVERED) + relay.count(LeadStatus.REJECTED) == expected, timeout=30)
    assert relay.count(LeadStatus.REJECTED) == 1  # careCycle refused one record, which logs its refusal
    relay.stop_workers()

    web_lines = [json.loads(line) for line in captured_web_logs.getvalue().splitlines()]
    worker_text = "".join(path.read_text() for path in tmp_path.glob("pii-*.log"))
    everything = captured_web_logs.getvalue() + worker_text
    assert len(web_lines) > 10 and "batch uploaded" in worker_text

    secrets = [
        SOURCE_KEY,
        OPS_TOKEN,
        CARECYCLE_KEY,
        relay.settings.leadrelay_encryption_key,
        APP_SECRET,
        VERIFY_TOKEN,
        graph.token,
        GOOGLE_KEY,
        WRONG_GOOGLE_KEY,
    ]
    assert "google delivery refused" in everything  # the refusals are logged, without the key presented
    for text in (everything, status_answers(relay)):
        leaked = {
            kind: [value for value in values if value.lower() in text.lower()]
            for kind, values in {**PERSONAL, "secrets": secrets}.items()
        }
        assert leaked == {kind: [] for kind in leaked}
    assert all(line.get("request_id") for line in web_lines if line["logger"].startswith("app."))
