"""API intake and lead status over HTTP: what a partner system and an operator see."""

from __future__ import annotations

import gzip
import json
import logging

import pytest
from flask import url_for
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from rq import Queue

from app import create_app
from app.crypto import fingerprint_of
from app.logs import LogIdsFilter
from app.models import IDEMPOTENCY_TTL_SECONDS, mask_phone
from app.queues import DELIVERY_QUEUE
from app.store import keys
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.intake_support import custom_fields, stored_record
from tests.metricscheck import scrape
from tests.support import post_chunked

SOURCE = {"X-Api-Key": SOURCE_KEY}
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def shows_a_phone(text: str) -> bool:
    """True when `text` holds one of the (212) 555-014x numbers posted here, as sent or normalized (not merely the
    digits 555, which a lead's hex id may hold)."""
    return "555-014" in text or "555014" in text


def test_post_lead_answers_202_with_its_id_status_and_status_url(client, store):
    response = client.post("/v1/leads", json=make_submission(phoneNumber="(212) 555-0142"), headers=SOURCE)

    assert response.status_code == 202
    body = response.json
    assert body["status"] == "queued" and body["warnings"] == []
    assert body["statusUrl"].endswith(f"/v1/leads/{body['id']}")
    assert store.leads.get(body["id"]).phone_masked == "+1******0142"


@pytest.mark.parametrize(
    ("base_url", "environ"),
    [
        pytest.param("http://relay.example", {}, id="plain"),
        pytest.param("https://relay.example:8443", {}, id="https-port"),
        pytest.param("http://relay.example", {"SCRIPT_NAME": "/relay"}, id="mounted-under-a-prefix"),
    ],
)
def test_status_url_is_the_lead_status_route_as_the_client_reached_the_relay(client, app, base_url, environ):
    response = client.post(
        "/v1/leads", json=make_submission(), headers=SOURCE, base_url=base_url, environ_overrides=environ
    )

    lead_id = response.json["id"]
    with app.test_request_context("/", base_url=base_url, environ_overrides=environ):
        assert response.json["statusUrl"] == url_for("leads.get_lead", lead_id=lead_id, _external=True)
    assert response.json["statusUrl"].startswith(base_url)


@pytest.mark.parametrize("public_url", ["https://leads.example.com", "https://example.com/relay/"])
def test_status_url_is_under_the_public_url_when_one_is_set_whatever_host_the_request_named(
    settings, redis, clock, public_url
):
    client = create_app(settings.replace(leadrelay_public_url=public_url), redis=redis, clock=clock).test_client()

    response = client.post("/v1/leads", json=make_submission(), headers=SOURCE, base_url="http://10.0.0.7:8000")

    assert response.json["statusUrl"] == f"{public_url.rstrip('/')}/v1/leads/{response.json['id']}"


def test_post_lead_accepts_a_bearer_source_key(client):
    response = client.post("/v1/leads", json=make_submission(), headers={"Authorization": f"Bearer {SOURCE_KEY}"})

    assert response.status_code == 202


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"X-Api-Key": "nope"}, id="wrong"),
        pytest.param(OPS, id="ops-token"),
        pytest.param({"X-Api-Key": SOURCE_KEY[:-1]}, id="the-key-but-its-last-character"),
        pytest.param({"X-Api-Key": SOURCE_KEY + "x"}, id="the-key-and-more"),
        pytest.param({"Authorization": f"Basic {SOURCE_KEY}"}, id="the-key-in-another-scheme"),
    ],
)
def test_post_lead_refuses_without_a_valid_source_key(client, redis, headers):
    response = client.post("/v1/leads", json=make_submission(), headers=headers)

    assert response.status_code == 401
    assert response.json["error"]["code"] == "UNAUTHORIZED"
    [expected] = response.json["error"]["fields"]["X-Api-Key"]  # the header to fix, and the other way to send it
    assert "Authorization: Bearer" in expected and SOURCE_KEY[:8] not in expected
    assert redis.zcard(keys.leads_index_key()) == 0


@pytest.mark.parametrize("headers", [pytest.param({}, id="none"), pytest.param(SOURCE, id="a-source-key")])
def test_an_ops_route_refused_for_its_token_names_the_header_and_what_was_expected(client, headers):
    response = client.get("/v1/stats", headers=headers)

    assert response.status_code == 401
    [expected] = response.json["error"]["fields"]["Authorization"]
    assert "Bearer" in expected and "X-Ops-Token" in expected


def test_post_lead_names_the_field_and_what_was_expected_when_the_phone_is_bad(client, redis):
    response = client.post("/v1/leads", json=make_submission(phoneNumber="555-12"), headers=SOURCE)

    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert list(error["fields"]) == ["phoneNumber"]
    assert "expected" in error["fields"]["phoneNumber"][0]
    assert redis.zcard(keys.leads_index_key()) == 0


def test_post_lead_keeps_the_lead_and_warns_about_a_bad_optional_field(client):
    response = client.post("/v1/leads", json=make_submission(dateOfBirth="02/30/1950"), headers=SOURCE)

    assert response.status_code == 202
    assert response.json["warnings"] and response.json["warnings"][0].startswith("dateOfBirth")


def test_text_carrying_a_lone_surrogate_escape_is_kept_with_a_replacement_character(client, store):
    body = '{"phoneNumber": "(212) 555-0142", "postalCode": "10001", "externalId": "crm-\\ud800-7"}'

    response = client.post("/v1/leads", data=body, content_type="application/json", headers=SOURCE)

    assert response.status_code == 202
    assert store.leads.get(response.json["id"]).external_id == "crm-\ufffd-7"


def test_bulk_post_reports_invalid_items_by_index_and_accepts_the_rest(client, store):
    leads = [make_submission(), make_submission(phoneNumber="not a phone"), make_submission()]

    response = client.post("/v1/leads", json={"leads": leads}, headers=SOURCE)

    assert response.status_code == 202
    results = response.json["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[1]["error"]["fields"] == {"phoneNumber": results[1]["error"]["fields"]["phoneNumber"]}
    assert results[0]["status"] == results[2]["status"] == "queued"
    assert store.batches.depth() == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"leads": []}, 422, id="empty-bulk"),
        pytest.param({"leads": [make_submission() for _ in range(201)]}, 422, id="over-200"),
        pytest.param({"leads": "x"}, 422, id="not-a-list"),
        pytest.param([1, 2], 400, id="json-array"),
    ],
)
def test_bulk_post_refuses_malformed_bodies(client, body, status):
    response = client.post("/v1/leads", json=body, headers=SOURCE)

    assert response.status_code == status
    assert set(response.json["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(
    ("lists", "status"),
    [pytest.param(15, 202, id="16-levels-accepted"), pytest.param(16, 400, id="17-levels-refused")],
)
def test_a_lead_may_nest_16_levels_deep(client, lists, status):
    body = json.dumps(make_submission()).rstrip("}") + ', "answers": ' + "[" * lists + "1" + "]" * lists + "}"

    response = client.post("/v1/leads", data=body, content_type="application/json", headers=SOURCE)

    assert response.status_code == status


def test_brackets_inside_text_do_not_count_as_nesting(client):
    lead = make_submission(notes="{[" * 40, comment="]}" * 40)

    response = client.post("/v1/leads", json=lead, headers=SOURCE)

    assert response.status_code == 202


def test_post_lead_refuses_a_body_declared_as_another_media_type_naming_the_content_type(client):
    response = client.post("/v1/leads", data="phone=1", headers={**SOURCE, "Content-Type": "text/plain"})

    assert response.status_code == 415
    assert response.json["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert response.json["error"]["fields"] == {"Content-Type": ["expected application/json"]}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        pytest.param(
            '{"phoneNumber": "(212) 555-0142", "zip": "10001", "phoneNumber": "(212) 555-0143"}',
            "phoneNumber",
            id="a-lead",
        ),
        pytest.param('{"leads": [{"phone": "(212) 555-0142"}], "leads": []}', "leads", id="a-bulk-body"),
        pytest.param('{"phone": "(212) 555-0142", "zip": "10001", "customFields": {"a": 1, "a": 2}}', "a", id="nested"),
    ],
)
def test_post_lead_refuses_a_field_given_twice_naming_it_instead_of_keeping_one_copy(client, store, body, name):
    # Parsers disagree on which copy wins (Python keeps the last, others the first): the partner meant one.
    response = client.post("/v1/leads", data=body, headers={**SOURCE, "Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST"
    assert response.json["error"]["fields"] == {name: ["expected once in its object, not given twice"]}
    assert not shows_a_phone(response.get_data(as_text=True))
    assert store.batches.depth() == 0


def test_a_bulk_item_giving_a_field_twice_is_refused_at_its_index_without_sinking_the_rest(client, store):
    body = (
        '{"leads": [{"phone": "(212) 555-0142", "zip": "10001"},'
        ' {"phone": "(212) 555-0143", "zip": "10001", "zip": "60601"},'
        ' {"phone": "(212) 555-0144", "zip": "10001", "customFields": {"a": 1, "a": 2}}]}'
    )

    response = client.post("/v1/leads", data=body, headers={**SOURCE, "Content-Type": "application/json"})

    assert response.status_code == 202
    first, second, third = response.json["results"]
    once = ["expected once in its object, not given twice"]
    assert first["status"] == "queued"
    assert second["index"] == 1 and second["error"]["fields"] == {"zip": once}
    assert third["index"] == 2 and third["error"]["fields"] == {"a": once}
    assert not shows_a_phone(response.get_data(as_text=True))
    assert store.batches.depth() == 1


@pytest.mark.parametrize(("coding", "status"), [("gzip", 415), ("br", 415), ("GZIP", 415), ("identity", 202)])
def test_post_lead_refuses_a_body_in_a_content_coding_it_does_not_read_naming_content_encoding(client, coding, status):
    # Read as sent, a compressed body was refused as JSON that is not UTF-8: the partner looked in the wrong place.
    body = json.dumps(make_submission()).encode()
    headers = {**SOURCE, "Content-Type": "application/json", "Content-Encoding": coding}

    response = client.post("/v1/leads", data=gzip.compress(body) if coding != "identity" else body, headers=headers)

    assert response.status_code == status
    if status == 415:
        assert response.json["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
        assert list(response.json["error"]["fields"]) == ["Content-Encoding"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("Content-Encoding", "x-sent-coding-1234", id="content-coding"),
        pytest.param("Content-Type", "text/x-sent-type-1234", id="media-type"),
    ],
)
def test_post_lead_refused_for_a_header_names_the_header_and_what_is_expected_never_the_value_sent(
    client, header, value
):
    headers = {**SOURCE, "Content-Type": "application/json", header: value}

    response = client.post("/v1/leads", data=json.dumps(make_submission()), headers=headers)

    assert response.status_code == 415
    error = response.json["error"]
    assert header in error["message"] and "expected" in error["message"]
    assert list(error["fields"]) == [header]
    assert "sent-" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param("[1, 2]", 400, id="no-object"),
        pytest.param("{phone", 400, id="not-json"),
        pytest.param('{"a": ' * 20 + "1" + "}" * 20, 400, id="too-deep"),
        pytest.param("", 400, id="empty"),
        pytest.param('{"notes": "' + "x" * (1024 * 1024) + '"}', 413, id="too-large"),
    ],
)
def test_post_lead_names_the_body_and_what_was_expected_when_refusing_it_whole(client, body, status):
    # A partner's error handling reads `fields`: a refusal of the whole body names the body, as a field's names it.
    response = client.post("/v1/leads", data=body, headers={**SOURCE, "Content-Type": "application/json"})

    assert response.status_code == status
    [expected] = response.json["error"]["fields"]["body"]
    assert expected.startswith("expected")


def test_post_lead_refuses_a_json_body_that_does_not_parse(client):
    response = client.post("/v1/leads", data="{phone", headers={**SOURCE, "Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            '{"phone": "212-555-0142", "zip": "10001",}',
            "the body is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 42",
            id="trailing-comma",
        ),
        pytest.param(
            '{"first_name": "Jos\xe9"}'.encode("latin-1"),
            "the body is not valid JSON: expected UTF-8 text",
            id="latin-1",
        ),
        pytest.param(
            '{"phone": "212-555-0142", "ref": ' + "7" * 5000 + "}",
            "the body holds a number with more digits than any lead needs",
            id="5000-digit-number",
        ),
    ],
)
def test_a_body_that_does_not_parse_is_refused_saying_why_and_where_not_what_it_holds(client, body, problem):
    response = client.post("/v1/leads", data=body, content_type="application/json", headers=SOURCE)

    assert response.status_code == 400
    assert response.json["error"]["message"] == f"expected a JSON object; {problem}"


def test_post_lead_reads_a_body_sent_without_a_content_type_as_json(client):
    response = client.post("/v1/leads", data=json.dumps(make_submission()), headers=SOURCE)

    assert response.status_code == 202, response.json


def test_post_lead_refuses_a_body_over_the_limit_naming_it(client):
    response = client.post("/v1/leads", json=make_submission(notes="x" * 2_000_000), headers=SOURCE)

    assert response.status_code == 413 and response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "at most 1048576 bytes" in response.json["error"]["message"]


def test_post_lead_refuses_a_chunked_body_over_the_limit_rather_than_cutting_it(client, redis):
    body = json.dumps({"leads": [make_submission(notes="x" * 6_000) for _ in range(200)]}).encode()

    response = post_chunked(client, "/v1/leads", body, headers=SOURCE, content_type="application/json")

    assert len(body) > 1048576
    assert response.status_code == 413 and response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "at most 1048576 bytes" in response.json["error"]["message"]
    assert redis.zcard(keys.leads_index_key()) == 0


def test_post_lead_takes_a_chunked_body_within_the_limit(client):
    body = json.dumps(make_submission()).encode()

    response = post_chunked(client, "/v1/leads", body, headers=SOURCE, content_type="application/json")

    assert response.status_code == 202, response.json


@pytest.mark.parametrize("item", ["x", None, 5, [1]])
def test_a_bulk_item_that_is_no_object_is_refused_at_its_index_and_the_rest_accepted(client, item):
    response = client.post("/v1/leads", json={"leads": [make_submission(), item]}, headers=SOURCE)

    assert response.status_code == 202
    first, second = response.json["results"]
    assert first["status"] == "queued"
    assert second["index"] == 1 and second["error"]["fields"] == {"lead": ["expected a JSON object: one lead's fields"]}


def test_a_bulk_body_with_fields_beside_leads_is_refused_naming_them(client, store):
    body = {"leads": [make_submission()], **make_submission()}

    response = client.post("/v1/leads", json=body, headers=SOURCE)

    assert response.status_code == 422
    [message] = response.json["error"]["fields"]["leads"]
    assert message.startswith("expected `leads` alone") and "phoneNumber" in message
    assert store.batches.depth() == 0


def test_a_single_lead_with_a_field_named_leads_that_is_no_list_is_one_lead(client, redis, settings):
    response = client.post("/v1/leads", json=make_submission(leads="3"), headers=SOURCE)

    assert response.status_code == 202, response.json
    assert custom_fields(stored_record(redis, settings, response.json["id"]))["leads"] == "3"


@pytest.mark.parametrize("leads", [None, {"phone": "2125550142"}, []])
def test_a_bulk_body_whose_leads_is_no_list_of_leads_is_refused_naming_leads(client, leads):
    response = client.post("/v1/leads", json={"leads": leads}, headers=SOURCE)

    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"leads": ["expected a non-empty list of leads"]}


def test_an_empty_idempotency_key_names_no_key(client):
    first = client.post("/v1/leads", json=make_submission(), headers={**SOURCE, "Idempotency-Key": ""})
    second = client.post("/v1/leads", json=make_submission(), headers={**SOURCE, "Idempotency-Key": ""})

    assert first.status_code == second.status_code == 202
    assert first.json["id"] != second.json["id"]


@pytest.mark.parametrize(("length", "status"), [(200, 202), (201, 400)])
def test_an_idempotency_key_may_have_at_most_200_characters(client, length, status):
    response = client.post("/v1/leads", json=make_submission(), headers={**SOURCE, "Idempotency-Key": "k" * length})

    assert response.status_code == status
    if status == 400:
        assert response.json["error"]["fields"] == {"Idempotency-Key": ["expected at most 200 printable characters"]}


def test_a_bulk_request_with_an_idempotency_key_keeps_each_item_as_its_own_lead(client, store):
    headers = {**SOURCE, "Idempotency-Key": "batch-9"}
    body = {"leads": [make_submission(phoneNumber=f"(212) 555-014{i}") for i in range(3)]}

    first = client.post("/v1/leads", json=body, headers=headers).json["results"]
    again = client.post("/v1/leads", json=body, headers=headers).json["results"]

    assert len({item["id"] for item in first}) == 3
    assert [item["status"] for item in first] == ["queued"] * 3
    assert [item["id"] for item in again] == [item["id"] for item in first]
    assert store.batches.depth() == 3


def test_a_single_request_cannot_take_the_key_of_a_bulk_requests_item(client):
    leads = [make_submission(), make_submission()]
    bulk = client.post("/v1/leads", json={"leads": leads}, headers={**SOURCE, "Idempotency-Key": "k3"})
    single = client.post("/v1/leads", json=leads[0], headers={**SOURCE, "Idempotency-Key": "k3#0"})
    again = client.post("/v1/leads", json={"leads": leads}, headers={**SOURCE, "Idempotency-Key": "k3"})

    first_item = bulk.json["results"][0]["id"]
    assert single.json["id"] != first_item
    assert [r["id"] for r in again.json["results"]] == [r["id"] for r in bulk.json["results"]]


def test_an_idempotency_key_with_a_control_character_is_refused(client):
    response = client.post("/v1/leads", json=make_submission(), headers={**SOURCE, "Idempotency-Key": "k\x1f0"})

    assert response.status_code == 400 and list(response.json["error"]["fields"]) == ["Idempotency-Key"]


def test_repeated_idempotency_key_returns_the_original_lead(client, store):
    headers, lead = {**SOURCE, "Idempotency-Key": "order-77"}, make_submission()
    first = client.post("/v1/leads", json=lead, headers=headers)
    again = client.post("/v1/leads", json=lead, headers=headers)

    assert first.json["id"] == again.json["id"]
    assert store.batches.depth() == 1


def test_a_repeated_idempotency_key_with_another_lead_answers_the_original_lead_warning_of_the_reused_key(
    client, store, caplog
):
    # A key names one lead (never a second one is made), but a partner reusing a key for another person must hear
    # that this one was not taken: the answer warns naming the key, and the relay logs it.
    headers = {**SOURCE, "Idempotency-Key": "order-79"}
    first = client.post("/v1/leads", json=make_submission(phoneNumber="(212) 555-0142"), headers=headers)
    other_lead = make_submission(phoneNumber="(212) 555-0143", email="not-an-email")
    other = client.post("/v1/leads", json=other_lead, headers=headers)

    assert other.status_code == 202 and other.json["id"] == first.json["id"]
    [warning] = other.json["warnings"]
    assert warning.startswith("Idempotency-Key: names lead " + first.json["id"]) and "not taken" in warning
    assert not shows_a_phone(json.dumps(other.json))
    assert store.batches.depth() == 1
    reused = [r for r in caplog.records if "Idempotency-Key was sent again with another lead" in r.getMessage()]
    assert len(reused) == 1 and reused[0].levelname == "WARNING" and reused[0].lead_ids == [first.json["id"]]


def test_a_repeated_idempotency_key_with_the_same_lead_answers_no_warning_about_the_key(client):
    headers, lead = {**SOURCE, "Idempotency-Key": "order-82"}, make_submission()
    client.post("/v1/leads", json=lead, headers=headers)

    again = client.post("/v1/leads", json=lead, headers=headers)

    assert again.status_code == 202 and not any(w.startswith("Idempotency-Key") for w in again.json["warnings"])


def test_a_reused_idempotency_key_is_counted_as_a_repeat(client):
    headers = {**SOURCE, "Idempotency-Key": "order-81"}
    client.post("/v1/leads", json=make_submission(), headers=headers)
    before = partner_intake_counts(client)

    client.post("/v1/leads", json=make_submission(), headers=headers)

    counted = {outcome: n - before.get(outcome, 0) for outcome, n in partner_intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"repeated": 1}


def partner_intake_counts(client) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in scrape(client).items()
        if name == "leadrelay_intake_leads_total" and dict(labels)["source"] == "partner"
    }


def test_a_body_refused_before_any_lead_is_read_counts_as_one_invalid_submission_of_its_source(client):
    # As Google's deliveries refused so are counted: a partner whose every request is refused shows on /metrics.
    before = partner_intake_counts(client)
    lead = json.dumps(make_submission())
    gzipped = {**SOURCE, "Content-Encoding": "gzip"}
    oversized = json.dumps({**make_submission(), "notes": "x" * (1024 * 1024)})

    refusals = [
        client.post("/v1/leads", data=b"{not json", content_type="application/json", headers=SOURCE),
        client.post("/v1/leads", data=b'{"phone": "1", "phone": "2"}', content_type="application/json", headers=SOURCE),
        client.post(
            "/v1/leads", data=lead, content_type="application/json", headers={**SOURCE, "Idempotency-Key": "x" * 201}
        ),
        client.post("/v1/leads", data=oversized, content_type="application/json", headers=SOURCE),
        client.post("/v1/leads", data=lead, content_type="text/plain", headers=SOURCE),
        client.post("/v1/leads", data=gzip.compress(lead.encode()), content_type="application/json", headers=gzipped),
        client.post("/v1/leads", json={"leads": [make_submission()] * 201}, headers=SOURCE),
    ]

    assert [r.status_code for r in refusals] == [400, 400, 400, 413, 415, 415, 422]
    counted = {outcome: n - before.get(outcome, 0) for outcome, n in partner_intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"invalid": 7}


def test_a_body_sent_without_a_known_source_key_is_counted_for_no_source(client):
    def intake_counts() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {key: n for key, n in scrape(client).items() if key[0] == "leadrelay_intake_leads_total"}

    before = intake_counts()

    assert client.post("/v1/leads", data=b"{not json", content_type="application/json").status_code == 401

    assert intake_counts() == before


def test_a_repeated_idempotency_key_with_the_same_lead_spelled_otherwise_returns_the_original_lead(client):
    headers = {**SOURCE, "Idempotency-Key": "order-80", "Content-Type": "application/json"}
    first = client.post("/v1/leads", data='{"phoneNumber": "(212) 555-0142", "postalCode": "10001"}', headers=headers)
    again = client.post("/v1/leads", data='{"postalCode":"10001","phoneNumber":"(212) 555-0142"}', headers=headers)

    assert again.status_code == 202 and again.json["id"] == first.json["id"]


def test_a_bulk_item_repeated_under_its_key_with_another_lead_answers_its_original_lead_warned(client, store):
    headers = {**SOURCE, "Idempotency-Key": "batch-10"}
    kept, changed = make_submission(), make_submission()
    first = client.post("/v1/leads", json={"leads": [kept, changed]}, headers=headers).json["results"]
    again = client.post("/v1/leads", json={"leads": [kept, make_submission()]}, headers=headers).json["results"]

    assert [item["id"] for item in again] == [item["id"] for item in first]
    assert not any(w.startswith("Idempotency-Key") for w in again[0]["warnings"])
    assert again[1]["index"] == 1
    assert again[1]["warnings"][0].startswith("Idempotency-Key: names lead " + first[1]["id"])
    assert store.batches.depth() == 2


def test_a_bulk_resent_under_its_key_with_other_leads_is_logged_in_one_line_not_one_per_item(client, caplog):
    headers = {**SOURCE, "Idempotency-Key": "batch-11"}
    first = client.post("/v1/leads", json={"leads": [make_submission() for _ in range(3)]}, headers=headers)
    caplog.clear()

    client.post("/v1/leads", json={"leads": [make_submission() for _ in range(3)]}, headers=headers)

    reused = [r for r in caplog.records if "Idempotency-Key was sent again" in r.getMessage()]
    assert len(reused) == 1 and reused[0].levelname == "WARNING"
    assert reused[0].lead_ids == [item["id"] for item in first.json["results"]]


def test_a_repeated_idempotency_key_answers_the_original_lead_as_it_stands_for_a_week(
    client, store, redis, cipher, clock
):
    headers, lead = {**SOURCE, "Idempotency-Key": "order-78"}, make_submission()
    first = client.post("/v1/leads", json=lead, headers=headers).json
    store.batches.claim(clock.now(), 200, 30)  # delivery took it up meanwhile

    again = client.post("/v1/leads", json=lead, headers=headers).json

    assert (again["id"], again["status"]) == (first["id"], "sending")
    fingerprint = fingerprint_of(cipher.initial_fingerprint_secret(), "order-78")  # a fresh Redis's secret
    stored_key = keys.idempotency_key("partner", f"key:{fingerprint}")
    assert IDEMPOTENCY_TTL_SECONDS - 60 < redis.ttl(stored_key) <= IDEMPOTENCY_TTL_SECONDS


def test_accepting_a_lead_wakes_one_delivery_job(client, redis):
    client.post("/v1/leads", json=make_submission(), headers=SOURCE)

    assert Queue(DELIVERY_QUEUE, connection=redis).count == 1


def test_records_are_encrypted_at_rest(client, redis):
    lead_id = client.post(
        "/v1/leads", json=make_submission(firstName="Zelda", email="zelda@example.com"), headers=SOURCE
    ).json["id"]

    stored = b"".join(v for v in redis.hgetall(keys.lead_key(lead_id)).values())
    assert b"Zelda" not in stored and b"zelda@example.com" not in stored and b"10001" not in stored


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        pytest.param("+12125550142", "+1******0142", id="e164"),
        pytest.param("2125550142", "******0142", id="national"),
        pytest.param("555", "***", id="too-short-to-show-any"),
        pytest.param("", "", id="none"),
    ],
)
def test_a_masked_phone_shows_no_more_than_its_last_four_digits(phone, masked):
    assert mask_phone(phone) == masked


def test_lead_status_shows_ids_masked_phone_and_events_and_no_personal_data(client):
    lead_id = client.post(
        "/v1/leads", json=make_submission(firstName="Zelda", dateOfBirth="1950-01-02"), headers=SOURCE
    ).json["id"]

    response = client.get(f"/v1/leads/{lead_id}", headers=OPS)

    assert response.status_code == 200
    body = response.json
    assert body["id"] == lead_id and body["externalId"] == lead_id and body["status"] == "queued"
    assert body["phone"].startswith("+1******")
    assert [e["status"] for e in body["events"]] == ["queued"]
    assert "Zelda" not in response.get_data(as_text=True) and "1950" not in response.get_data(as_text=True)


def test_lead_status_needs_an_ops_token(client):
    lead_id = client.post("/v1/leads", json=make_submission(), headers=SOURCE).json["id"]

    assert client.get(f"/v1/leads/{lead_id}").status_code == 401
    assert client.get(f"/v1/leads/{lead_id}", headers=SOURCE).status_code == 401


def test_unknown_lead_is_a_404_in_the_error_shape(client):
    response = client.get("/v1/leads/nope", headers=OPS)

    assert response.status_code == 404
    assert response.json["error"]["code"] == "NOT_FOUND"


def test_an_id_naming_another_key_of_a_lead_is_a_404_not_a_store_failure(client):
    lead_id = client.post("/v1/leads", json=make_submission(), headers=SOURCE).json["id"]

    response = client.get(f"/v1/leads/{lead_id}:events", headers=OPS)

    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"


def test_stats_count_leads_by_status_and_show_the_queue(client):
    client.post("/v1/leads", json={"leads": [make_submission(), make_submission()]}, headers=SOURCE)

    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["counts"]["queued"] == 2 and stats["queueDepth"] == 2
    assert stats["paused"] is False and stats["pause"] is None
    assert stats["rateBudget"] == {"limitPerMinute": 60, "limitFrom": "settings", "usedLastMinute": 0}
    assert stats["estimatedDrainSeconds"] is None and stats["estimatedDrainBlockedBy"] == "noWorker"


def test_stats_show_a_delivery_pause_and_its_reason(client, store, clock):
    store.pause.pause("careCycle 401 UNAUTHORIZED: bad key", clock.now(), clock.now() + 30)

    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["paused"] is True
    assert stats["pause"]["reason"] == "careCycle 401 UNAUTHORIZED: bad key"


def test_every_response_carries_a_request_id_taken_from_the_request_when_sent(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


def test_readiness_reports_redis_and_stored_data_layout(client, redis, store):
    assert client.get("/readyz").status_code == 200
    redis.set(keys.schema_version_key(), "999")

    response = client.get("/readyz")

    assert response.status_code == 503 and response.json["schemaCurrent"] is False


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        pytest.param(
            OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "out of memory", id="full"
        ),
        pytest.param(
            ReadOnlyError("You can't write against a read only replica."), "read-only", id="read-only-replica"
        ),
        pytest.param(ResponseError("MISCONF Errors writing to the AOF file"), "writes stopped", id="writes-stopped"),
    ],
)
def test_readiness_fails_while_redis_answers_but_refuses_writes_saying_why(client, redis, monkeypatch, refusal, reason):
    def refuse(*args, **kwargs):
        raise refusal

    monkeypatch.setattr(redis, "set", refuse)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "redis": True, "redisWrites": False, "redisProblem": reason}


def test_readiness_fails_while_redis_is_unreachable_saying_so_without_its_url(client, redis, monkeypatch):
    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to redis://:s3cret-password@10.0.0.5:6379/0.")

    monkeypatch.setattr(redis, "set", unreachable)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "redis": False, "redisProblem": "unreachable"}
    assert "s3cret" not in response.get_data(as_text=True)


def test_a_lead_whose_intake_count_cannot_be_written_is_answered_as_stored(client, redis, monkeypatch, caplog):
    def unwritable(source, outcome):
        raise PermissionError("metrics folder")

    monkeypatch.setattr("app.metrics._intake_counter", unwritable)

    response = client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})

    assert response.status_code == 202
    assert redis.exists(keys.lead_key(response.json["id"]))
    assert "an intake count was lost: the metrics folder cannot be written (PermissionError)" in caplog.text


def test_leads_stored_are_answered_as_stored_when_waking_delivery_fails(client, store, monkeypatch, caplog):
    def unreachable(redis, lane):
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr("app.queues.enqueue_delivery", unreachable)

    response = client.post("/v1/leads", json={"leads": [make_submission(), make_submission()]}, headers=SOURCE)

    assert response.status_code == 202
    assert [result["status"] for result in response.json["results"]] == ["queued", "queued"]
    assert store.batches.depth() == 2  # the workers' ticker starts their delivery
    assert "delivery was not woken: redis unavailable (ConnectionError)" in caplog.text


def test_unknown_routes_and_methods_answer_in_the_error_shape(client):
    assert client.get("/nowhere").json["error"]["code"] == "NOT_FOUND"
    response = client.delete("/v1/stats", headers=OPS)
    assert response.status_code == 405 and response.json["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_a_custom_field_key_is_named_to_the_submitter_but_not_kept_for_operators(client, redis):
    # A key is submitted text too: a page may name a field after what was typed into it.
    key = "call jane.doe@example.com at 212-555-0199"
    submission = make_submission(**{key: "x" * 300, "utm_campaign": {"nested": 1}})

    response = client.post("/v1/leads", json=submission, headers={"X-Api-Key": SOURCE_KEY})

    assert response.status_code == 202
    assert f"customFields.{key}: expected at most 255 characters; cut" in response.json["warnings"]
    assert any(w.startswith("customFields.utm_campaign: expected") for w in response.json["warnings"])
    lead_id = response.json["id"]
    shown = client.get(f"/v1/leads/{lead_id}", headers=OPS).json
    listed = client.get("/v1/leads", headers=OPS).json["leads"][0]
    assert "customFields: expected at most 255 characters; cut" in shown["warnings"]
    for text in (json.dumps(shown), json.dumps(listed), redis.hget(keys.lead_key(lead_id), "warnings").decode()):
        assert "jane.doe" not in text and "0199" not in text and "utm_campaign" not in text


def test_an_idempotency_key_is_kept_by_its_fingerprint_not_as_sent(client, redis):
    headers = {"X-Api-Key": SOURCE_KEY, "Idempotency-Key": "signup-jane.doe@example.com"}

    lead = make_submission()
    first = client.post("/v1/leads", json=lead, headers=headers).json
    again = client.post("/v1/leads", json=lead, headers=headers).json

    assert again["id"] == first["id"]
    assert not [name for name in redis.keys("*") if b"jane.doe" in name]


def test_the_request_line_of_a_lead_looked_up_or_retried_carries_its_id_never_a_path_that_is_no_lead(
    client, store, caplog
):
    lead_id = client.post("/v1/leads", json=make_submission(), headers=SOURCE).json["id"]
    with caplog.at_level("INFO", logger="app.requests"):
        client.get(f"/v1/leads/{lead_id}", headers=OPS)
        client.post(f"/v1/leads/{lead_id}/retry", headers=OPS)  # 409: a queued lead
        client.get("/v1/leads/zebedee.q@example.com", headers=OPS)

    lines = [r for r in caplog.records if r.name == "app.requests"]
    assert [(r.status, getattr(r, "lead_id", None)) for r in lines] == [(200, lead_id), (409, lead_id), (404, None)]
    assert "zebedee" not in caplog.text


def test_redis_away_under_intake_is_logged_once_per_change_not_once_per_request(client, clock, monkeypatch, caplog):
    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr("app.store.leads.LeadStore.admit", unreachable)

    with caplog.at_level(logging.INFO):
        answers = [client.post("/v1/leads", json=make_submission(), headers=SOURCE).status_code for _ in range(5)]
        clock.advance(60)
        answers.append(client.post("/v1/leads", json=make_submission(), headers=SOURCE).status_code)

    assert answers == [503] * 6
    assert [r.getMessage() for r in caplog.records if r.name == "app.errors"] == [
        "redis unavailable: unreachable (ConnectionError)",
        "redis still unavailable: unreachable (ConnectionError) (5 more requests answered 503 in 60 s)",
    ]
    assert len([r for r in caplog.records if r.name == "app.requests"]) == 6  # each request keeps its own line


def test_the_request_line_of_an_invalid_lead_names_the_source_that_sent_it(client, caplog):
    caplog.handler.addFilter(LogIdsFilter())  # as the process's handler has it
    with caplog.at_level("INFO", logger="app.requests"):
        client.post("/v1/leads", json={"phoneNumber": "12", "firstName": "Jane"}, headers=SOURCE)
        client.post("/v1/leads", json={"phoneNumber": "12"}, headers={"X-Api-Key": "not-a-key"})

    lines = [r for r in caplog.records if r.name == "app.requests"]
    assert [(r.status, getattr(r, "source", None)) for r in lines] == [(422, "partner"), (401, None)]
