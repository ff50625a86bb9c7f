"""Google lead form webhook end to end: Google's raw payload over HTTP in, the exact careCycle record out."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import requests

from app import create_app
from app.models import LeadStatus
from app.sources import LeadSource, SourceKind, SourceRegistry
from tests.browser import serve
from tests.intake_support import GOOGLE_KEY, PRODUCTION_LEAD, TEST_LEAD
from tests.support import wait_until

TIMEOUT_SECONDS = 5


@pytest.fixture
def google_url(relay) -> Iterator[str]:
    source = LeadSource(
        slug="gads-dental",
        kind=SourceKind.GOOGLE,
        secret=GOOGLE_KEY,
        source_id="src_google_dental",
        lead_cost=12.5,
        static_custom_fields={"lead_source": "google-lead-form"},
    )
    app = create_app(relay.settings, redis=relay.redis, sources=SourceRegistry([source]))
    with serve(app) as url:
        relay.start_worker("google-e2e")
        yield f"{url}/v1/webhooks/google/gads-dental"


def delivered(sandbox, lead_id):
    return [
        r
        for request in sandbox.sandbox.requests
        if request.status == 200
        for r in request.records
        if r["externalId"] == lead_id
    ]


def test_a_google_lead_reaches_carecycle_as_the_exact_expected_record_once(google_url, relay, sandbox):
    first = requests.post(google_url, json=PRODUCTION_LEAD, timeout=TIMEOUT_SECONDS)
    repeat = requests.post(google_url, json=PRODUCTION_LEAD, timeout=TIMEOUT_SECONDS)  # Google delivers at least once

    assert first.status_code == repeat.status_code == 200
    lead_id = first.json()["id"]
    assert repeat.json()["id"] == lead_id
    wait_until(lambda: delivered(sandbox, lead_id), timeout=15)
    assert delivered(sandbox, lead_id) == [
        {
            "phoneNumber": "+13125550187",
            "firstName": "Sam",
            "lastName": "Example",
            "email": "sam.example@example.com",
            "postalCode": "60601",
            "timezone": "America/Chicago",
            "state": "IL",
            "city": "Chicago",
            "externalId": lead_id,
            "sourceId": "src_google_dental",
            "leadCost": 12.5,
            "customFields": [
                {"fieldKey": "lead_source", "value": "google-lead-form"},
                {"fieldKey": "gclid", "value": "ExAmPlEgClId0123456789"},
                {"fieldKey": "google_lead_id", "value": "LeAdExAmPlE0001-abcdefghijklmnop"},
                {"fieldKey": "google_form_id", "value": "123456789012"},
                {"fieldKey": "google_campaign_id", "value": "23456789012"},
                {"fieldKey": "google_adgroup_id", "value": "345678901234"},
                {"fieldKey": "google_creative_id", "value": "456789012345"},
                {"fieldKey": "google_api_version", "value": "1.0"},
                {"fieldKey": "google_lead_submit_time", "value": "2026-01-15T17:04:05Z"},
                {"fieldKey": "google_lead_source", "value": "LEAD_FORM"},
                {"fieldKey": "service", "value": "Consultation"},
            ],
        }
    ]
    # careCycle has the record before the worker has its answer: the lead is settled a moment later.
    wait_until(lambda: relay.status(lead_id)["status"] == "delivered", timeout=10)


def test_google_test_data_is_held_as_test_while_a_real_lead_goes_through(google_url, relay, sandbox):
    test = requests.post(google_url, json=TEST_LEAD, timeout=TIMEOUT_SECONDS)
    real = requests.post(google_url, json=PRODUCTION_LEAD, timeout=TIMEOUT_SECONDS)

    wait_until(lambda: delivered(sandbox, real.json()["id"]), timeout=15)
    assert test.status_code == 200 and test.json()["status"] == "test"
    assert relay.status(test.json()["id"])["status"] == LeadStatus.TEST.value
    assert delivered(sandbox, test.json()["id"]) == []


def test_google_lead_with_a_wrong_key_is_refused_and_nothing_reaches_carecycle(google_url, relay, sandbox):
    forged = {**copy.deepcopy(PRODUCTION_LEAD), "google_key": "123"}

    response = requests.post(google_url, json=forged, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 403
    assert relay.store.leads.status_counts()[LeadStatus.QUEUED] == 0
    assert sandbox.sandbox.requests == []
