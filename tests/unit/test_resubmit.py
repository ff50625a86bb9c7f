"""Retrying a lead whose submission normalization refused: normalized again under the source's settings of now."""

from __future__ import annotations

import pytest

from app import create_app
from app.crypto import RecordCipher
from app.models import LeadStatus
from app.sources import SourceRegistry
from app.store import keys
from tests.conftest import OPS_TOKEN
from tests.intake_support import GOOGLE_KEY, google_source

URL = "/v1/webhooks/google/gads"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
# The advertiser asked for the phone in a question of their own, which the source does not map at first.
BODY = {
    "lead_id": "lead-best-number",
    "google_key": GOOGLE_KEY,
    "user_column_data": [
        {"column_id": "best_number", "column_name": "Best number", "string_value": "(312) 555-0199"},
        {"column_id": "POSTAL_CODE", "string_value": "10001"},
    ],
}


@pytest.fixture
def client_with(settings, redis, clock):
    """A client of the relay running with the given sources (an operator's fix is a restart with new ones)."""

    def make(*sources):
        return create_app(settings, redis=redis, clock=clock, sources=SourceRegistry(list(sources))).test_client()

    return make


@pytest.fixture
def rejected_lead_id(client_with, store):
    response = client_with(google_source()).post(URL, json=BODY)
    assert store.leads.get(response.json["id"]).status is LeadStatus.REJECTED
    return response.json["id"]


def test_after_the_field_map_is_fixed_a_retry_normalizes_the_kept_lead_and_queues_it(
    client_with, rejected_lead_id, store, redis, settings
):
    fixed = client_with(google_source(field_map={"best_number": "phoneNumber"}))

    response = fixed.post(f"/v1/leads/{rejected_lead_id}/retry", headers=OPS)

    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["phone"], response.json["error"]) == ("queued", "+1******0199", None)
    record = RecordCipher(settings.leadrelay_encryption_key).open(redis.hget(keys.lead_key(rejected_lead_id), "record"))
    assert (record["phoneNumber"], record["postalCode"], record["externalId"]) == (
        "+13125550199",
        "10001",
        rejected_lead_id,
    )
    assert not redis.hexists(keys.lead_key(rejected_lead_id), keys.SUBMISSION_FIELD)
    assert store.batches.depth() == 1
    assert fixed.get("/v1/audit", headers=OPS).json["entries"][0]["leadId"] == rejected_lead_id


def test_a_bulk_retry_after_the_fix_queues_the_kept_leads_too(client_with, rejected_lead_id, store):
    fixed = client_with(google_source(field_map={"best_number": "phoneNumber"}))

    response = fixed.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert response.json == {"requeued": 1}
    assert store.leads.get(rejected_lead_id).status is LeadStatus.QUEUED


def test_without_a_fix_the_retry_says_what_normalization_still_refuses_and_changes_nothing(
    client_with, rejected_lead_id, store, redis
):
    unchanged = client_with(google_source())

    one = unchanged.post(f"/v1/leads/{rejected_lead_id}/retry", headers=OPS)
    bulk = unchanged.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert one.status_code == 409
    assert one.json["error"]["message"].startswith("the submission still fails normalization: phoneNumber: missing")
    assert "0199" not in one.json["error"]["message"]
    assert bulk.json == {"requeued": 0}
    assert store.leads.get(rejected_lead_id).status is LeadStatus.REJECTED
    assert redis.hexists(keys.lead_key(rejected_lead_id), keys.SUBMISSION_FIELD)
    assert store.batches.depth() == 0


def test_a_kept_lead_whose_source_is_gone_is_not_retried_and_says_why(client_with, rejected_lead_id):
    response = client_with().post(f"/v1/leads/{rejected_lead_id}/retry", headers=OPS)

    assert response.status_code == 409 and response.json["error"]["message"] == "source 'gads' is no longer configured"
