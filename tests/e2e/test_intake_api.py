"""API intake end to end: a partner's raw payload in, the exact careCycle record out at the sandbox."""

from __future__ import annotations

from tests.conftest import SOURCE_KEY
from tests.support import wait_until


def test_a_partner_payload_in_common_spellings_arrives_as_the_exact_carecycle_record(relay, sandbox):
    payload = {
        "full_name": "  José  Nguyễn ",
        "phone": "(212) 555-0142",
        "email": "Jose.Nguyen@Example.com",
        "zip": "10001-1234",
        "dob": "7/4/1952",
        "gender": "m",
        "marital_status": "widow",
        "medicare_id": "1EG4-TE5-MK73",
        "household_income": "$45,000",
        "veteran": "yes",
        "utm_source": "google",
        "utm_campaign": "aep-2026",
        "gclid": "ExAmPlEgClId0123456789",
        "external_id": "crm-778",
    }
    response = relay.client.post("/v1/leads", json=payload, headers={"X-Api-Key": SOURCE_KEY})
    assert response.status_code == 202, response.json
    relay.start_worker("api-intake")

    wait_until(lambda: sandbox.sandbox.requests, timeout=15)

    [record] = sandbox.sandbox.requests[0].records
    assert record == {
        "phoneNumber": "+12125550142",
        "firstName": "José",
        "lastName": "Nguyễn",
        "email": "Jose.Nguyen@Example.com",
        "postalCode": "10001",
        "state": "NY",
        "city": "New York",
        "timezone": "America/New_York",
        "dateOfBirth": "07-04-1952",
        "gender": "Male",
        "maritalStatus": "Widowed",
        "mbiNumber": "1EG4-TE5-MK73",
        "householdIncome": 45000,
        "veteran": True,
        "externalId": "crm-778",
        "customFields": [
            {"fieldKey": "utm_source", "value": "google"},
            {"fieldKey": "utm_campaign", "value": "aep-2026"},
            {"fieldKey": "gclid", "value": "ExAmPlEgClId0123456789"},
        ],
    }
    wait_until(lambda: relay.status(response.json["id"])["status"] == "delivered", timeout=10)
