"""Google Ads lead form webhook: key, idempotency, test leads, bad leads, and every documented column_id."""

from __future__ import annotations

import copy
import json

import pytest

from app import create_app
from app.crypto import RecordCipher, fingerprint_of
from app.models import LeadStatus
from app.schemas.google import QUALIFYING_COLUMNS
from app.sources import SourceKind, SourceRegistry
from app.store import keys
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_source
from tests.intake_support import (
    GOOGLE_KEY,
    PRODUCTION_LEAD,
    TEST_LEAD,
    custom_fields,
    form_source,
    google_source,
    stored_ids,
    stored_record,
)
from tests.metricscheck import scrape
from tests.support import post_chunked

URL = "/v1/webhooks/google/gads"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture
def sources():
    return [google_source(), form_source(), make_source(slug="partner", kind=SourceKind.API, secret=SOURCE_KEY)]


@pytest.fixture
def app(settings, redis, clock, sources):
    return create_app(settings, redis=redis, clock=clock, sources=SourceRegistry(sources))


def lead_with(columns, **fields):
    lead = {"lead_id": fields.pop("lead_id", "lead-1"), "google_key": GOOGLE_KEY, "user_column_data": columns}
    lead.update(fields)
    return lead


def columns(*pairs):
    return [{"column_id": cid, "column_name": cid.title(), "string_value": value} for cid, value in pairs]


BASE_COLUMNS = (("PHONE_NUMBER", "+13125550187"), ("POSTAL_CODE", "60601"))


def test_google_production_lead_is_stored_with_every_answer_and_attribution_id(client, redis, settings, store):
    response = client.post(URL, json=PRODUCTION_LEAD)

    assert response.status_code == 200
    assert response.json["status"] == "queued"
    record = stored_record(redis, settings, response.json["id"])
    assert {k: v for k, v in record.items() if k not in ("customFields", "externalId")} == {
        "phoneNumber": "+13125550187",
        "firstName": "Sam",
        "lastName": "Example",
        "email": "sam.example@example.com",
        "postalCode": "60601",
        "timezone": "America/Chicago",
        "state": "IL",
        "city": "Chicago",
    }
    assert custom_fields(record) == {
        "gclid": "ExAmPlEgClId0123456789",
        "google_lead_id": "LeAdExAmPlE0001-abcdefghijklmnop",
        "google_form_id": "123456789012",
        "google_campaign_id": "23456789012",
        "google_adgroup_id": "345678901234",
        "google_creative_id": "456789012345",
        "google_api_version": "1.0",
        "google_lead_submit_time": "2026-01-15T17:04:05Z",
        "google_lead_source": "LEAD_FORM",
        "service": "Consultation",
    }
    assert store.batches.depth() == 1


def test_google_lead_naming_a_field_twice_is_taken_not_refused_since_google_sends_it_once(client, redis, settings):
    body = json.dumps(lead_with(columns(*BASE_COLUMNS))).rstrip("}") + ', "lead_id": "lead-1"}'

    response = client.post(URL, data=body, content_type="application/json")

    assert response.status_code == 200 and response.json["status"] == "queued"


@pytest.mark.parametrize(
    ("column_id", "value", "field", "expected"),
    [
        pytest.param("FIRST_NAME", "Sam", "firstName", "Sam", id="FIRST_NAME"),
        pytest.param("LAST_NAME", "Example", "lastName", "Example", id="LAST_NAME"),
        pytest.param("EMAIL", "Sam@Example.com", "email", "Sam@Example.com", id="EMAIL"),
        pytest.param("STREET_ADDRESS", "1 Main St", "address", "1 Main St", id="STREET_ADDRESS"),
        pytest.param("CITY", "Evanston", "city", "Evanston", id="CITY"),
        pytest.param("REGION", "Illinois", "state", "IL", id="REGION"),
        pytest.param("WORK_EMAIL", "sam@work.example.com", "email", "sam@work.example.com", id="WORK_EMAIL"),
        pytest.param("COUNTRY", "US", "customFields.country", "US", id="COUNTRY"),
        pytest.param("COMPANY_NAME", "Acme", "customFields.company_name", "Acme", id="COMPANY_NAME"),
        pytest.param("JOB_TITLE", "CTO", "customFields.job_title", "CTO", id="JOB_TITLE"),
    ],
)
def test_google_contact_column_ids_map_to_carecycle_fields(client, redis, settings, column_id, value, field, expected):
    response = client.post(URL, json=lead_with(columns(*BASE_COLUMNS, (column_id, value))))

    record = stored_record(redis, settings, response.json["id"])
    if field.startswith("customFields."):
        assert custom_fields(record)[field.split(".", 1)[1]] == expected
    else:
        assert record[field] == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param((("FULL_NAME", "Sam Example"),), ("Sam", "Example"), id="FULL_NAME-split"),
        pytest.param(
            (("FULL_NAME", "Samuel Example"), ("FIRST_NAME", "Sam"), ("LAST_NAME", "Ex")),
            ("Sam", "Ex"),
            id="first-last-win",
        ),
    ],
)
def test_google_names_come_from_first_and_last_name_else_the_full_name(client, redis, settings, given, expected):
    response = client.post(URL, json=lead_with(columns(*BASE_COLUMNS, *given)))

    record = stored_record(redis, settings, response.json["id"])
    assert (record["firstName"], record["lastName"]) == expected


def test_google_work_phone_and_email_are_used_only_without_the_personal_ones(client, redis, settings):
    given = [("WORK_PHONE", "+12125550142"), ("POSTAL_CODE", "60601"), ("WORK_EMAIL", "w@work.example.com")]
    only_work = client.post(URL, json=lead_with(columns(*given), lead_id="a"))
    both = client.post(URL, json=lead_with(columns(*given, ("PHONE_NUMBER", "+13125550187"), ("EMAIL", "p@x.com"))))

    work = stored_record(redis, settings, only_work.json["id"])
    personal = stored_record(redis, settings, both.json["id"])
    assert (work["phoneNumber"], work["email"]) == ("+12125550142", "w@work.example.com")
    assert (personal["phoneNumber"], personal["email"]) == ("+13125550187", "p@x.com")


@pytest.mark.parametrize("column_id", sorted(QUALIFYING_COLUMNS))
def test_google_qualifying_questions_become_custom_fields_under_their_id(client, redis, settings, column_id):
    given = {"column_id": column_id, "column_name": "Are you over 18?", "string_value": "Yes"}
    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), given]))

    assert custom_fields(stored_record(redis, settings, response.json["id"]))[column_id.lower()] == "Yes"


@pytest.mark.parametrize(
    ("column", "key"),
    [
        pytest.param(
            {"column_id": "what_is_your_preferred_dealership?", "column_name": "Preferred dealership?"},
            "Preferred dealership?",
            id="custom-question-by-label",
        ),
        pytest.param(
            {"column_id": "BUDGET_QUESTION", "column_name": "Your budget"}, "Your budget", id="custom-question-id"
        ),
        pytest.param({"column_id": "PHONE_NUMBER_VERIFIED"}, "PHONE_NUMBER_VERIFIED", id="unlabelled-unknown-column"),
        pytest.param(
            {"column_id": "custom_q", "column_name": "Email"}, "Email", id="label-naming-a-field-stays-custom"
        ),
    ],
)
def test_google_custom_questions_become_custom_fields_under_their_label(client, redis, settings, column, key):
    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), {**column, "string_value": "Yes"}]))

    record = stored_record(redis, settings, response.json["id"])
    assert custom_fields(record)[key] == "Yes"
    assert record.get("email") is None


def test_google_custom_questions_sharing_a_label_each_keep_their_answer(client, redis, settings):
    given = [
        {"column_id": "plan_other", "column_name": "Please specify", "string_value": "Kaiser"},
        {"column_id": "household_other", "column_name": "Please specify", "string_value": "4 people"},
        {"column_id": "typed_click_id", "column_name": "gclid", "string_value": "typed"},
    ]

    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), *given], gcl_id="ExAmPlEgClId"))

    assert response.json["warnings"] == []
    fields = custom_fields(stored_record(redis, settings, response.json["id"]))
    assert fields["Please specify"] == "Kaiser"
    assert fields["household_other"] == "4 people"
    assert (fields["gclid"], fields["typed_click_id"]) == ("ExAmPlEgClId", "typed")


def test_google_custom_question_whose_label_and_column_id_are_both_taken_is_reported_under_its_label(
    client, redis, settings
):
    # "Please specify" is taken by the first question, and "plan_other", this one's column_id, by the second's label:
    # no key of its own is left, so the earlier answers keep theirs and this one is dropped with a word.
    given = [
        {"column_id": "household_other", "column_name": "Please specify", "string_value": "4 people"},
        {"column_id": "notes_q", "column_name": "plan_other", "string_value": "see notes"},
        {"column_id": "plan_other", "column_name": "Please specify", "string_value": "Kaiser"},
    ]

    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), *given]))

    assert response.json["status"] == "queued"
    assert response.json["warnings"] == [
        "customFields.Please specify: expected once: an earlier field has this key; dropped"
    ]
    fields = custom_fields(stored_record(redis, settings, response.json["id"]))
    assert (fields["Please specify"], fields["plan_other"]) == ("4 people", "see notes")
    assert "Kaiser" not in fields.values()


def test_google_custom_question_labelled_and_identified_as_an_attribution_key_leaves_attribution_alone(
    client, redis, settings
):
    given = [{"column_id": "gclid", "column_name": "gclid", "string_value": "typed"}]

    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), *given], gcl_id="ExAmPlEgClId"))

    assert response.json["warnings"] == ["customFields.gclid: expected once: an earlier field has this key; dropped"]
    assert custom_fields(stored_record(redis, settings, response.json["id"]))["gclid"] == "ExAmPlEgClId"


def test_google_answers_repeated_under_one_column_id_are_reported_not_dropped_silently(client, redis, settings):
    given = columns(*BASE_COLUMNS, ("SERVICE", "Consultation"), ("SERVICE", "Cleaning"))

    response = client.post(URL, json=lead_with(given))

    assert response.json["warnings"] == ["customFields.service: expected once: an earlier field has this key; dropped"]
    assert custom_fields(stored_record(redis, settings, response.json["id"]))["service"] == "Consultation"


def test_google_contact_column_answered_twice_keeps_the_first_and_warns_of_the_other(client, redis, settings):
    given = columns(("PHONE_NUMBER", "+13125550187"), ("POSTAL_CODE", "60601"), ("PHONE_NUMBER", "+13125550188"))

    response = client.post(URL, json=lead_with(given))

    assert response.json["status"] == "queued"
    assert response.json["warnings"] == ["PHONE_NUMBER: expected once: an earlier answer has this column_id; dropped"]
    assert stored_record(redis, settings, response.json["id"])["phoneNumber"] == "+13125550187"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # The same answer, a space apart: nothing is dropped, so nothing is said to be.
        pytest.param("+13125550187", " +13125550187 ", id="alike-but-for-blanks-warns-of-nothing"),
        pytest.param("", "+13125550187", id="blank-then-filled-takes-the-filled-answer"),
    ],
)
def test_google_contact_column_answered_twice_with_one_answer_keeps_it_without_a_warning(
    client, redis, settings, first, second
):
    given = columns(("PHONE_NUMBER", first), ("POSTAL_CODE", "60601"), ("PHONE_NUMBER", second))

    response = client.post(URL, json=lead_with(given))

    assert (response.json["status"], response.json["warnings"]) == ("queued", [])
    assert stored_record(redis, settings, response.json["id"])["phoneNumber"] == "+13125550187"


@pytest.mark.parametrize(
    "column_id",
    [
        "GOVERNMENT_ISSUED_ID_CPF_BR",
        "GOVERNMENT_ISSUED_ID_DNI_AR",
        "GOVERNMENT_ISSUED_ID_DNI_PE",
        "GOVERNMENT_ISSUED_ID_RUT_CL",
        "GOVERNMENT_ISSUED_ID_CC_CO",
        "GOVERNMENT_ISSUED_ID_CI_EC",
        "GOVERNMENT_ISSUED_ID_RFC_MX",
    ],
)
def test_google_national_id_numbers_are_not_forwarded(client, redis, settings, column_id):
    response = client.post(URL, json=lead_with(columns(*BASE_COLUMNS, (column_id, "123.456.789-09"))))

    record = stored_record(redis, settings, response.json["id"])
    assert "123.456.789-09" not in str(record)
    assert response.json["warnings"] == [f"{column_id}: national id numbers are not forwarded"]


def test_google_source_field_map_can_place_a_column(settings, redis, clock):
    source = google_source(field_map={"VEHICLE_MODEL": "model_of_interest"})
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    response = client.post(URL, json=lead_with(columns(*BASE_COLUMNS, ("VEHICLE_MODEL", "Roadster"))))

    assert custom_fields(stored_record(redis, settings, response.json["id"]))["model_of_interest"] == "Roadster"


def test_google_refuses_a_chunked_body_over_256_kib_as_too_large_rather_than_cut(client, redis):
    body = json.dumps(lead_with(columns(*BASE_COLUMNS), pad="x" * 300_000)).encode()

    response = post_chunked(client, URL, body, content_type="application/json")

    assert response.status_code == 413 and response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "at most 262144 bytes" in response.json["error"]["message"]
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param({"google_key": "wrong"}, 403, id="wrong-key"),
        pytest.param({"google_key": GOOGLE_KEY[:-1]}, 403, id="prefix-of-the-key"),
        pytest.param({"google_key": 123}, 403, id="key-not-a-string"),
        pytest.param({"google_key": None}, 401, id="no-key"),
        pytest.param({"google_key": ""}, 401, id="empty-key"),
    ],
)
def test_google_refuses_a_wrong_or_missing_key_and_stores_nothing(client, redis, change, status):
    body = {**copy.deepcopy(PRODUCTION_LEAD), **change}
    if change.get("google_key") is None:
        body.pop("google_key")

    response = client.post(URL, json=body)

    assert response.status_code == status
    assert response.json["error"]["code"] == {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status]
    assert list(response.json["error"]["fields"]) == ["google_key"]  # what to fix, never the key sent
    assert "wrong" not in response.get_data(as_text=True)
    assert stored_ids(redis) == []


def test_google_deliveries_refused_are_counted_and_logged_by_source_never_with_the_key(client, caplog):
    before = intake_counts(client)

    client.post(URL, json={**PRODUCTION_LEAD, "google_key": "wrong-key-0123456789"})
    client.post(URL, json={**PRODUCTION_LEAD, "google_key": None})
    client.post(URL, json={"google_key": GOOGLE_KEY, "user_column_data": []})

    counted = {outcome: n - before.get(outcome, 0) for outcome, n in intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"unauthorized": 2, "invalid": 1}
    refusals = [record for record in caplog.records if record.getMessage().startswith("google delivery refused")]
    assert [record.getMessage() for record in refusals] == [
        "google delivery refused: google_key not recognised",
        "google delivery refused: google_key missing",
        "google delivery refused: expected a valid lead_id",
    ]
    assert all(record.source == "gads" for record in refusals)
    assert "wrong-key-0123456789" not in caplog.text and GOOGLE_KEY not in caplog.text


def test_google_bodies_refused_before_their_key_is_read_are_counted_and_logged_by_source(client, caplog):
    before = intake_counts(client)
    too_large = json.dumps(lead_with(columns(*BASE_COLUMNS), pad="x" * 300_000))

    assert client.post(URL, data=too_large, content_type="application/json").status_code == 413
    assert client.post(URL, data=b"not json", content_type="application/json").status_code == 400
    gzipped = {"Content-Encoding": "gzip"}
    assert client.post(URL, data=b"\x1f\x8b", content_type="application/json", headers=gzipped).status_code == 415

    counted = {outcome: n - before.get(outcome, 0) for outcome, n in intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"invalid": 3}
    refusals = [record for record in caplog.records if record.getMessage().startswith("google delivery refused")]
    assert [record.getMessage() for record in refusals] == [
        "google delivery refused: the body may be at most 262144 bytes",
        "google delivery refused: expected a JSON object; the body is not valid JSON: Expecting value at line 1,"
        " column 1",
        "google delivery refused: Content-Encoding: expected none, the body uncompressed",
    ]
    assert "gzip" not in caplog.text
    assert all(record.source == "gads" for record in refusals)


def test_google_source_without_a_secret_refuses_every_key(settings, redis, clock):
    source = google_source(secret=None)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    assert client.post(URL, json={**PRODUCTION_LEAD, "google_key": ""}).status_code == 401
    assert client.post(URL, json={**PRODUCTION_LEAD, "google_key": "anything"}).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/webhooks/google/nope", id="unknown-slug"),
        pytest.param("/v1/webhooks/google/acme-dental", id="a-form-source"),
        pytest.param("/v1/webhooks/google/partner", id="an-api-source"),
    ],
)
def test_google_answers_404_for_a_slug_that_is_no_google_source(client, redis, path):
    response = client.post(path, json=PRODUCTION_LEAD)

    assert response.status_code == 404
    expected = "expected the slug of a google source the relay is configured with"
    assert response.json["error"]["fields"] == {"slug": [expected]}
    assert stored_ids(redis) == []


def test_google_repeated_lead_id_returns_the_original_lead(client, redis, store):
    first = client.post(URL, json=PRODUCTION_LEAD)
    again = client.post(URL, json=PRODUCTION_LEAD)

    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    assert stored_ids(redis) == [first.json["id"]]
    assert store.batches.depth() == 1


def test_google_test_lead_is_stored_as_test_and_kept_out_of_delivery(client, store):
    response = client.post(URL, json=TEST_LEAD)

    assert response.status_code == 200
    assert response.json["status"] == "test"
    assert store.leads.get(response.json["id"]).status is LeadStatus.TEST
    assert store.batches.depth() == 0


def test_google_test_lead_is_delivered_when_the_source_says_so(settings, redis, clock, store):
    source = google_source(deliver_test_leads=True)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    response = client.post(URL, json=TEST_LEAD)

    assert response.json["status"] == "queued"
    assert store.batches.depth() == 1


def sent_test_data():
    """What Google's "Send test data" button sends: `dummy_value` in every column."""
    body = copy.deepcopy(TEST_LEAD)
    for column in body["user_column_data"]:
        column["string_value"] = "dummy_value"
    return body


def test_google_test_lead_whose_values_cannot_be_normalized_is_kept_as_test_not_rejected(
    client, redis, settings, store
):
    before = intake_counts(client)

    answer = client.post(URL, json=sent_test_data())

    assert answer.status_code == 200
    assert answer.json["status"] == "test"
    lead = store.leads.get(answer.json["id"])
    assert lead.status is LeadStatus.TEST
    assert lead.events[0].detail.startswith("Google test lead from gads; not normalizable: phoneNumber: expected")
    assert lead.error is None
    counts = client.get("/v1/stats", headers=OPS).json["counts"]
    assert (counts["test"], counts["rejected"]) == (1, 0)
    counted = {outcome: n - before.get(outcome, 0) for outcome, n in intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"test": 1}
    assert store.batches.depth() == 0
    kept = RecordCipher(settings.leadrelay_encryption_key).open(
        redis.hget(keys.lead_key(lead.id), keys.SUBMISSION_FIELD)
    )
    assert kept["lead_id"] == TEST_LEAD["lead_id"]


def test_google_test_lead_kept_as_test_is_neither_listed_as_failing_nor_retried(client, store):
    lead_id = client.post(URL, json=sent_test_data()).json["id"]

    failing = client.get("/v1/leads?status=rejected", headers=OPS).json
    one = client.post(f"/v1/leads/{lead_id}/retry", headers=OPS)
    bulk = client.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert failing["leads"] == []
    assert one.status_code == 409
    assert bulk.json["requeued"] == 0
    assert store.leads.get(lead_id).status is LeadStatus.TEST


def test_google_test_lead_whose_values_cannot_be_normalized_is_rejected_when_the_source_delivers_test_leads(
    settings, redis, clock, store
):
    source = google_source(deliver_test_leads=True)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    answer = client.post(URL, json=sent_test_data())

    assert answer.json["status"] == "rejected"
    lead = store.leads.get(answer.json["id"])
    assert lead.events[0].detail.startswith("rejected at intake: phoneNumber: expected")
    assert lead.error is not None and lead.error.startswith("phoneNumber: expected")


@pytest.mark.parametrize(
    "phone",
    [pytest.param("12", id="too-short"), pytest.param("+18005550100", id="toll-free"), pytest.param("", id="blank")],
)
def test_google_lead_with_an_unusable_phone_is_kept_as_rejected_and_answered_200(client, redis, store, phone):
    body = lead_with(columns(("PHONE_NUMBER", phone), ("POSTAL_CODE", "60601"), ("FULL_NAME", "Sam Example")))

    response = client.post(URL, json=body)
    again = client.post(URL, json=body)

    assert response.status_code == again.status_code == 200
    assert response.json["status"] == again.json["status"] == "rejected"
    assert again.json["id"] == response.json["id"]
    lead = store.leads.get(response.json["id"])
    assert lead.status is LeadStatus.REJECTED
    assert lead.events[0].detail.startswith("rejected at intake: phoneNumber: ")
    assert "expected a" in lead.events[0].detail
    assert store.batches.depth() == 0
    assert store.leads.status_counts()[LeadStatus.REJECTED] == 1


def test_a_google_lead_rejected_at_intake_counts_as_failed_in_the_stats_as_one_careCycle_rejects(client):
    body = lead_with(columns(("PHONE_NUMBER", "12"), ("POSTAL_CODE", "60601"), ("FULL_NAME", "Sam Example")))

    assert client.post(URL, json=body).json["status"] == "rejected"
    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["counts"]["rejected"] == 1
    assert stats["failed"] == {"last5m": 1, "last1h": 1}


def test_a_google_lead_kept_as_rejected_shows_why_and_keeps_its_submission_out_of_delivery(
    client, redis, settings, store
):
    body = lead_with(columns(("PHONE_NUMBER", "(800) 555-0100"), ("POSTAL_CODE", "60601-1234")))

    lead_id = client.post(URL, json=body).json["id"]

    lead = store.leads.get(lead_id)
    assert lead.error is not None and lead.error.startswith("phoneNumber: expected")
    assert "555-0100" not in lead.error and "5550100" not in lead.error
    assert redis.hexists(keys.lead_key(lead_id), keys.RECORD_FIELD) == 0
    kept = RecordCipher(settings.leadrelay_encryption_key).open(
        redis.hget(keys.lead_key(lead_id), keys.SUBMISSION_FIELD)
    )
    assert kept["user_column_data"][0]["string_value"] == "(800) 555-0100"  # the webhook body as it came
    assert "google_key" not in kept


def test_a_google_lead_rejected_at_intake_is_not_retried_while_it_still_fails_normalization(client, store):
    body = lead_with(columns(("PHONE_NUMBER", "(800) 555-0100"), ("POSTAL_CODE", "60601")))
    lead_id = client.post(URL, json=body).json["id"]

    one = client.post(f"/v1/leads/{lead_id}/retry", headers=OPS)
    bulk = client.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert one.status_code == 409
    assert one.json["error"]["message"].startswith("the submission still fails normalization: phoneNumber: expected")
    assert bulk.status_code == 200 and bulk.json["requeued"] == 0
    assert store.leads.get(lead_id).status is LeadStatus.REJECTED
    assert store.batches.depth() == 0


def test_a_google_lead_kept_as_rejected_counts_once_in_the_intake_metric(client):
    body = lead_with(columns(("PHONE_NUMBER", "12"), ("POSTAL_CODE", "60601")))
    before = intake_counts(client)

    client.post(URL, json=body)

    counted = {outcome: n - before.get(outcome, 0) for outcome, n in intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"rejected": 1}


def intake_counts(client) -> dict[str, float]:
    counts = {}
    for (name, labels), value in scrape(client).items():
        if name == "leadrelay_intake_leads_total" and dict(labels)["source"] == "gads":
            counts[dict(labels)["outcome"]] = value
    return counts


def test_google_lead_without_any_usable_location_is_kept_as_rejected(client, store):
    # Idaho's area code spans two timezones, and 99999 is no ZIP: nothing tells the TCPA calling window.
    body = lead_with(columns(("PHONE_NUMBER", "(208) 555-0100"), ("POSTAL_CODE", "99999")))

    response = client.post(URL, json=body)

    assert response.json["status"] == "rejected"
    lead = store.leads.get(response.json["id"])
    assert "postalCode: expected" in lead.events[0].detail
    assert lead.phone_masked == "+1******0100"  # a valid phone shows masked, as on any lead
    assert store.batches.depth() == 0


@pytest.mark.parametrize(
    "column_id",
    [pytest.param("WORK_PHONE", id="work-phone"), pytest.param("best_number", id="a-column-the-field-map-places")],
)
def test_a_google_lead_kept_as_rejected_shows_its_phone_masked_whichever_column_gave_it(
    settings, redis, clock, column_id
):
    source = google_source(field_map={"best_number": "phoneNumber"})
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()
    body = lead_with(columns((column_id, "(208) 555-0100"), ("POSTAL_CODE", "99999")))

    lead_id = client.post(URL, json=body).json["id"]

    status = client.get(f"/v1/leads/{lead_id}", headers=OPS).json
    assert status["status"] == "rejected"
    assert status["phone"] == "+1******0100"


@pytest.mark.parametrize(
    "typed",
    [pytest.param("123-45-6789", id="a-social-security-number"), pytest.param("born 01/02/1950", id="a-birth-date")],
)
def test_a_google_lead_rejected_for_its_phone_shows_none_of_what_was_typed_as_one(client, store, typed):
    body = lead_with(columns(("PHONE_NUMBER", typed), ("POSTAL_CODE", "60601")))

    lead_id = client.post(URL, json=body).json["id"]

    assert store.leads.get(lead_id).phone_masked == ""
    assert client.get(f"/v1/leads/{lead_id}", headers=OPS).json["phone"] == ""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"google_key": GOOGLE_KEY, "user_column_data": []}, 422, id="no-lead-id"),
        pytest.param({"google_key": GOOGLE_KEY, "lead_id": "x"}, 422, id="no-user-column-data"),
        pytest.param({"google_key": GOOGLE_KEY, "lead_id": 7, "user_column_data": []}, 422, id="lead-id-not-text"),
        pytest.param({"google_key": GOOGLE_KEY, "lead_id": "x", "user_column_data": "a"}, 422, id="columns-not-a-list"),
        pytest.param(
            {"google_key": GOOGLE_KEY, "lead_id": "x" * 256, "user_column_data": []}, 422, id="lead-id-too-long"
        ),
        pytest.param([PRODUCTION_LEAD], 400, id="not-an-object"),
    ],
)
def test_google_body_that_is_no_lead_is_refused_with_a_4xx_google_does_not_retry(client, redis, body, status):
    response = client.post(URL, json=body)

    assert response.status_code == status
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        pytest.param({"lead_id": 7, "user_column_data": []}, "lead_id", "expected text", id="lead-id-not-text"),
        pytest.param({"lead_id": "x" * 256, "user_column_data": []}, "lead_id", "expected 1 to 255", id="too-long"),
        pytest.param({"lead_id": "x", "user_column_data": "a"}, "user_column_data", "expected a list", id="not-list"),
        pytest.param({"user_column_data": []}, "lead_id", "missing: expected text", id="lead-id-missing"),
        pytest.param({"lead_id": None, "user_column_data": []}, "lead_id", "missing: expected text", id="lead-id-null"),
        pytest.param({"lead_id": "x"}, "user_column_data", "missing: expected a list", id="columns-missing"),
        pytest.param({"lead_id": "x", "user_column_data": None}, "user_column_data", "missing: expected a", id="null"),
    ],
)
def test_google_refusal_says_what_was_expected(client, body, field, expected):
    response = client.post(URL, json={"google_key": GOOGLE_KEY, **body})

    assert response.status_code == 422
    assert expected in json.dumps(response.json["error"]["fields"][field])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(3, "3", id="whole-number"),
        pytest.param(2.5, "2.5", id="decimal"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(None, "", id="null"),
    ],
)
def test_google_answer_that_is_no_string_is_kept_as_its_json_text(client, redis, settings, value, expected):
    given = {"column_id": "NUMBER_OF_TRAVELERS", "column_name": None, "string_value": value}

    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), given]))

    assert response.status_code == 200
    assert response.json["warnings"] == []
    assert custom_fields(stored_record(redis, settings, response.json["id"])).get("number_of_travelers", "") == expected


def test_google_phone_sent_as_a_number_is_read_as_its_digits(client, redis, settings):
    given = [
        {"column_id": "PHONE_NUMBER", "string_value": 3125550187},
        {"column_id": "POSTAL_CODE", "string_value": 60601},
    ]

    response = client.post(URL, json=lead_with(given))

    assert response.json["status"] == "queued"
    record = stored_record(redis, settings, response.json["id"])
    assert (record["phoneNumber"], record["postalCode"]) == ("+13125550187", "60601")


def test_google_answer_with_a_null_column_id_is_kept_under_its_label(client, redis, settings):
    given = {"column_id": None, "column_name": "Your budget", "string_value": "$5k"}

    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), given]))

    assert custom_fields(stored_record(redis, settings, response.json["id"]))["Your budget"] == "$5k"


@pytest.mark.parametrize(
    ("item", "warning"),
    [
        pytest.param("a", "user_column_data.2: expected an object with column_id and string_value", id="text"),
        pytest.param(7, "user_column_data.2: expected an object with column_id and string_value", id="number"),
        pytest.param(None, "user_column_data.2: expected an object with column_id and string_value", id="null"),
        pytest.param([], "user_column_data.2: expected an object with column_id and string_value", id="list"),
        pytest.param({"column_id": 5, "string_value": "x"}, "user_column_data.2.column_id: expected text", id="id"),
        pytest.param(
            {"column_id": "Q", "column_name": ["a"]}, "user_column_data.2.column_name: expected text", id="name"
        ),
        pytest.param(
            {"column_id": "Q", "string_value": {"a": 1}}, "user_column_data.2.string_value: expected text", id="obj"
        ),
        pytest.param({}, "user_column_data.2: expected a column_id or column_name", id="empty"),
        pytest.param(
            {"column_id": " ", "column_name": None, "string_value": "x"},
            "user_column_data.2: expected a column_id or column_name",
            id="no-question",
        ),
    ],
)
def test_google_answer_that_cannot_be_read_is_dropped_with_a_warning_and_the_lead_kept(client, store, item, warning):
    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), item]))

    assert response.status_code == 200
    assert response.json["status"] == "queued"
    assert response.json["warnings"] == [f"{warning}; the answer was dropped"]
    assert store.leads.get(response.json["id"]).warnings == (f"{warning}; the answer was dropped",)


def test_google_answer_dropped_as_unreadable_names_none_of_its_text(client, store):
    item = {
        "column_id": "Jane Roe's question",
        "column_name": "Jane Roe's question",
        "string_value": ["jane@example.com"],
    }

    response = client.post(URL, json=lead_with([*columns(*BASE_COLUMNS), item]))

    shown = [*response.json["warnings"], *store.leads.get(response.json["id"]).warnings]
    assert shown and not any("Jane" in warning or "jane@" in warning for warning in shown)


def test_google_warning_for_an_optional_value_of_the_wrong_type_says_what_was_expected(client):
    response = client.post(URL, json={**copy.deepcopy(PRODUCTION_LEAD), "gcl_id": 5, "is_test": "maybe"})

    assert response.status_code == 200
    assert sorted(response.json["warnings"]) == ["gcl_id: expected text", "is_test: expected true or false"]


def test_google_bad_optional_ids_are_dropped_with_a_warning_and_the_lead_kept(client, redis, settings):
    body = {**copy.deepcopy(PRODUCTION_LEAD), "form_id": "not-a-number", "creative_id": -5, "brand_new_field": {"x": 1}}

    response = client.post(URL, json=body)

    assert response.status_code == 200
    assert sorted(response.json["warnings"]) == [
        "creative_id: expected a whole number id",
        "form_id: expected a whole number id",
    ]
    fields = custom_fields(stored_record(redis, settings, response.json["id"]))
    assert "google_form_id" not in fields and fields["google_campaign_id"] == "23456789012"


def test_google_warnings_from_reading_the_body_are_kept_in_the_leads_status_and_answered_once(client):
    body = copy.deepcopy(PRODUCTION_LEAD)
    body["form_id"] = "not-a-number"
    body["user_column_data"].append({"column_id": "GOVERNMENT_ISSUED_ID_CPF_BR", "string_value": "123.456.789-09"})

    answer = client.post(URL, json=body)
    status = client.get(f"/v1/leads/{answer.json['id']}", headers=OPS)

    expected = [
        "form_id: expected a whole number id",
        "GOVERNMENT_ISSUED_ID_CPF_BR: national id numbers are not forwarded",
    ]
    assert answer.json["warnings"] == expected
    assert status.json["warnings"] == expected


def test_google_warnings_kept_in_the_status_come_before_normalizations_and_name_no_question_label(client):
    label = "Jane Roe's budget question"
    body = copy.deepcopy(PRODUCTION_LEAD)
    body["gcl_id"] = 5
    body["user_column_data"].append({"column_id": "q_budget", "column_name": label, "string_value": "x" * 300})

    answer = client.post(URL, json=body)
    status = client.get(f"/v1/leads/{answer.json['id']}", headers=OPS)

    assert answer.json["warnings"] == [
        "gcl_id: expected text",
        f"customFields.{label}: expected at most 255 characters; cut",
    ]
    assert status.json["warnings"] == ["gcl_id: expected text", "customFields: expected at most 255 characters; cut"]


def test_google_lead_kept_as_rejected_keeps_the_warnings_from_reading_its_body(client):
    body = lead_with(columns(("PHONE_NUMBER", "12"), ("POSTAL_CODE", "60601")), campaign_id="not-a-number")

    answer = client.post(URL, json=body)
    status = client.get(f"/v1/leads/{answer.json['id']}", headers=OPS)

    assert answer.json["status"] == "rejected"
    assert answer.json["warnings"] == status.json["warnings"] == ["campaign_id: expected a whole number id"]


def test_google_int64_ids_keep_every_digit(client, redis, settings):
    response = client.post(
        URL, json={**PRODUCTION_LEAD, "campaign_id": 9223372036854775807, "form_id": "9007199254740993"}
    )

    fields = custom_fields(stored_record(redis, settings, response.json["id"]))
    assert (fields["google_campaign_id"], fields["google_form_id"]) == ("9223372036854775807", "9007199254740993")


@pytest.mark.parametrize("past_int64", [9223372036854775808, "9223372036854775808"], ids=["number", "digits"])
def test_google_an_id_past_int64_is_dropped_with_a_warning(client, redis, settings, past_int64):
    response = client.post(URL, json={**PRODUCTION_LEAD, "campaign_id": past_int64})

    assert response.json["warnings"] == ["campaign_id: expected a whole number id"]
    assert "google_campaign_id" not in custom_fields(stored_record(redis, settings, response.json["id"]))


def test_google_key_is_never_stored(client, redis, cipher):
    client.post(URL, json=PRODUCTION_LEAD)

    assert not any(GOOGLE_KEY.encode() in (redis.dump(key) or b"") for key in redis.keys("*"))
    lead_key = fingerprint_of(cipher.initial_fingerprint_secret(), f"google:{PRODUCTION_LEAD['lead_id']}")
    assert redis.exists(keys.idempotency_key("gads", f"key:{lead_key}"))


def test_google_an_id_of_thousands_of_digits_is_dropped_with_a_warning_not_a_failure(client, redis, settings):
    response = client.post(URL, json={**PRODUCTION_LEAD, "campaign_id": "9" * 5000})

    assert response.status_code == 200
    assert response.json["warnings"] == ["campaign_id: expected at most 200 characters"]


def test_google_a_lead_id_no_text_store_takes_is_refused_naming_it_not_a_failure(client, redis):
    response = client.post(URL, json={**PRODUCTION_LEAD, "lead_id": "lead-\ud800"})

    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"lead_id": ["expected text (an unpaired surrogate is none)"]}
    assert stored_ids(redis) == []


def test_google_attribution_is_kept_ahead_of_static_custom_fields_when_over_the_cap(settings, redis, clock):
    static = {f"static_{n}": "v" for n in range(50)}  # as many as careCycle takes
    app = create_app(
        settings, redis=redis, clock=clock, sources=SourceRegistry([google_source(static_custom_fields=static)])
    )

    answer = app.test_client().post(URL, json=PRODUCTION_LEAD)

    fields = custom_fields(stored_record(redis, settings, answer.json["id"]))
    assert len(fields) == 50
    assert fields["gclid"] == "ExAmPlEgClId0123456789"
    assert fields["google_lead_id"] == "LeAdExAmPlE0001-abcdefghijklmnop"
    assert fields["google_campaign_id"] == "23456789012"
