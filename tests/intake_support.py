"""Shared by the form and Google intake tests: their sources, the references' payloads, reading what was stored."""

from __future__ import annotations

from app.crypto import RecordCipher
from app.sources import SourceKind
from app.store import keys
from tests.factories import make_phone, make_source

LANDING = "https://landing.example.com"
THANKS = f"{LANDING}/thanks"
OTHER_THANKS = f"{LANDING}/thanks-b"
FORM_URL = "/v1/forms/acme-dental"
URLENCODED = "application/x-www-form-urlencoded"
GOOGLE_KEY = "k3y-ExAmPlE-2f9c1d7e-0123456789abcdef"

# The reference's production example (google-lead-forms.md §2.1).
PRODUCTION_LEAD = {
    "lead_id": "LeAdExAmPlE0001-abcdefghijklmnop",
    "user_column_data": [
        {"column_id": "FULL_NAME", "column_name": "Full Name", "string_value": "Sam Example"},
        {"column_id": "EMAIL", "column_name": "User Email", "string_value": "sam.example@example.com"},
        {"column_id": "PHONE_NUMBER", "column_name": "User Phone", "string_value": "+13125550187"},
        {"column_id": "POSTAL_CODE", "column_name": "Postal Code", "string_value": "60601"},
        {"column_id": "SERVICE", "column_name": "Which service are you interested in?", "string_value": "Consultation"},
    ],
    "api_version": "1.0",
    "form_id": 123456789012,
    "campaign_id": 23456789012,
    "adgroup_id": 345678901234,
    "creative_id": 456789012345,
    "gcl_id": "ExAmPlEgClId0123456789",
    "google_key": GOOGLE_KEY,
    "is_test": False,
    "lead_submit_time": "2026-01-15T17:04:05Z",
    "lead_source": "LEAD_FORM",
}
# The reference's "Send test data" example (§2.2), with the capital-G key of Google's test samples.
TEST_LEAD = {
    "lead_id": "TeSter-123-ExAmPlE",
    "user_column_data": [
        {"column_id": "FULL_NAME", "column_name": "Full Name", "string_value": "FirstName LastName"},
        {"column_id": "EMAIL", "column_name": "User Email", "string_value": "test@example.com"},
        {"column_id": "PHONE_NUMBER", "column_name": "User Phone", "string_value": "+16505550123"},
        {"column_id": "CITY", "column_name": "City", "string_value": "Mountain View"},
        {"column_id": "REGION", "column_name": "Region", "string_value": "California"},
        {"column_id": "POSTAL_CODE", "column_name": "Postal Code", "string_value": "94043"},
    ],
    "api_version": "1.0",
    "form_id": 123456789012,
    "campaign_id": 23456789012,
    "Google_key": GOOGLE_KEY,
    "is_test": True,
    "gcl_id": "TeSter-123-ExAmPlE",
    "adgroup_id": 345678901234,
    "creative_id": 30000000000,
}


def google_source(**overrides):
    return make_source(**{"slug": "gads", "kind": SourceKind.GOOGLE, "secret": GOOGLE_KEY, **overrides})


def form_source(**overrides):
    values = {
        "slug": "acme-dental",
        "kind": SourceKind.FORM,
        "allowed_origins": (LANDING,),
        "redirect_allowlist": (THANKS, OTHER_THANKS),
        "thank_you_url": THANKS,
        "source_id": "src_acme",
    }
    values.update(overrides)
    return make_source(**values)


def stored_ids(redis):
    return [member.decode() for member in redis.zrange(keys.leads_index_key(), 0, -1)]


def stored_record(redis, settings, lead_id):
    return RecordCipher(settings.leadrelay_encryption_key).open(redis.hget(keys.lead_key(lead_id), "record"))


def custom_fields(record):
    return {item["fieldKey"]: item["value"] for item in record.get("customFields", [])}


def form(**fields):
    base = {"phone": make_phone(), "first_name": "Jane", "zip": "10001"}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}
