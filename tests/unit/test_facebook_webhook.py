"""`/v1/webhooks/facebook`: Meta's handshake, signed leadgen notifications, routing and idempotency."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from rq import Queue

from app import create_app
from app.models import LeadStatus
from app.queues import FAILED_JOB_TTL_SECONDS, FETCH_JOB_TIMEOUT_SECONDS, FETCH_META_LEAD_JOB, FETCH_QUEUE
from app.sources import LeadSource, SourceKind, SourceRegistry
from app.store import keys
from tests.conftest import OPS_TOKEN

APP_SECRET = "app_secret_example"
VERIFY_TOKEN = "verify-token-example"
PAGE_ID, FORM_ID, OTHER_FORM_ID = "100000000000001", "200000000000001", "200000000000009"
URL = "/v1/webhooks/facebook"
# reference/meta-lead-ads.md §4: exact bytes and the header Meta sends for them.
VECTOR_BODY = (
    b'{"object":"page","entry":[{"id":"0","time":1,"changes":[{"field":"leadgen","value":{"leadgen_id":"1",'
    b'"form_id":"2","page_id":"3","created_time":1,"ad_id":"4","adgroup_id":"4"}}]}]}'
)
VECTOR_SIGNATURE = "sha256=421aa27c5096b535851aff2e2d7e0596cd65d652f414030ca424ecbe2eaa4769"


@pytest.fixture
def meta_sources():
    return SourceRegistry(
        [
            LeadSource(slug="fb-acme", kind=SourceKind.FACEBOOK, page_ids=(PAGE_ID,), form_ids=(FORM_ID,)),
            LeadSource(slug="fb-other-form", kind=SourceKind.FACEBOOK, form_ids=(OTHER_FORM_ID,)),
            LeadSource(slug="fb-vector", kind=SourceKind.FACEBOOK, form_ids=("2",)),
        ]
    )


@pytest.fixture
def client(settings, redis, clock, meta_sources):
    meta_settings = settings.replace(facebook_app_secret=APP_SECRET, facebook_verify_token=VERIFY_TOKEN)
    return create_app(meta_settings, redis=redis, clock=clock, sources=meta_sources).test_client()


def leadgen(leadgen_id, page_id=PAGE_ID, form_id=FORM_ID, **more):
    return {"field": "leadgen", "value": {"leadgen_id": leadgen_id, "page_id": page_id, "form_id": form_id, **more}}


def notification(*entries):
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": 1767225600, "changes": list(c)} for c in entries]}


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(client, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}
    return client.post(URL, data=body, headers=headers)


def fetch_jobs(redis):
    jobs = Queue(FETCH_QUEUE, connection=redis).get_jobs()
    assert all(job.func_name == FETCH_META_LEAD_JOB for job in jobs)
    assert all(job.timeout == FETCH_JOB_TIMEOUT_SECONDS and job.failure_ttl == FAILED_JOB_TTL_SECONDS for job in jobs)
    assert all(job.result_ttl == 0 for job in jobs)  # nothing kept after success
    return [job.args[0] for job in jobs]


def stored_lead_ids(redis):
    return [member.decode() for member in redis.zrange(keys.leads_index_key(), 0, -1)]


def test_handshake_echoes_the_challenge_as_plain_text_when_the_verify_token_matches(client):
    response = client.get(
        URL, query_string={"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    )

    assert response.status_code == 200
    assert response.get_data(as_text=True) == "1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"}, id="wrong-token"),
        pytest.param(
            {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN}, id="wrong-mode"
        ),
        pytest.param({"hub.mode": "subscribe", "hub.challenge": "1"}, id="no-token"),
    ],
)
def test_handshake_is_refused_with_403_in_the_json_error_shape(client, query):
    response = client.get(URL, query_string=query)

    assert response.status_code == 403
    assert response.json["error"]["code"] == "FORBIDDEN" and response.json["error"]["fields"] == {}


def test_handshake_is_refused_when_no_verify_token_is_configured(settings, redis, clock, meta_sources):
    client = create_app(settings, redis=redis, clock=clock, sources=meta_sources).test_client()

    response = client.get(URL, query_string={"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""})

    assert response.status_code == 403


def test_notification_signed_as_in_metas_test_vector_is_accepted(client, redis):
    response = client.post(URL, data=VECTOR_BODY, headers={"X-Hub-Signature-256": VECTOR_SIGNATURE})

    assert response.status_code == 200
    [lead] = response.json["leads"]
    assert lead["leadgenId"] == "1" and lead["status"] == "fetching" and lead["repeated"] is False
    assert fetch_jobs(redis) == [lead["id"]]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="missing"),
        pytest.param({"X-Hub-Signature-256": sign(VECTOR_BODY, "another-secret")}, 403, id="other-secret"),
        pytest.param({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 403, id="wrong-digest"),
        pytest.param({"X-Hub-Signature-256": VECTOR_SIGNATURE.replace("sha256=", "sha1=")}, 403, id="sha1-prefix"),
        pytest.param({"X-Hub-Signature": "sha1=421aa27c5096b535851aff2e2d7e0596cd65d652"}, 401, id="only-sha1-header"),
    ],
)
def test_notification_with_a_bad_or_missing_signature_is_refused_and_stores_nothing(client, redis, headers, status):
    response = client.post(URL, data=VECTOR_BODY, headers=headers)

    assert response.status_code == status
    assert response.json["error"]["code"] == ("UNAUTHORIZED" if status == 401 else "FORBIDDEN")
    assert stored_lead_ids(redis) == [] and fetch_jobs(redis) == []


def test_notification_whose_body_was_changed_after_signing_is_refused(client, redis):
    tampered = VECTOR_BODY.replace(b'"leadgen_id":"1"', b'"leadgen_id":"7"')

    response = client.post(URL, data=tampered, headers={"X-Hub-Signature-256": VECTOR_SIGNATURE})

    assert response.status_code == 403
    assert stored_lead_ids(redis) == [] and fetch_jobs(redis) == []


def test_notification_is_refused_when_no_app_secret_is_configured(settings, redis, clock, meta_sources):
    client = create_app(settings, redis=redis, clock=clock, sources=meta_sources).test_client()

    response = client.post(URL, data=VECTOR_BODY, headers={"X-Hub-Signature-256": sign(VECTOR_BODY, "")})

    assert response.status_code == 403
    assert stored_lead_ids(redis) == []


def test_signature_is_checked_over_the_raw_bytes_with_escaped_unicode(client, redis):
    body = VECTOR_BODY.replace(b'"object":"page"', b'"object":"page","note":"Jos\\u00e9"')

    response = client.post(URL, data=body, headers={"X-Hub-Signature-256": sign(body)})

    assert response.status_code == 200 and len(response.json["leads"]) == 1


def test_several_leadgen_changes_in_one_post_become_fetching_leads_each_with_a_fetch_job(client, redis, store):
    payload = notification(
        [leadgen("900000000000001"), {"field": "feed", "value": {"item": "post"}}, leadgen("900000000000002")],
        [leadgen("900000000000003", form_id=OTHER_FORM_ID, page_id="100000000000777")],
    )

    response = post_signed(client, payload)

    assert response.status_code == 200
    leads = response.json["leads"]
    assert [lead["leadgenId"] for lead in leads] == ["900000000000001", "900000000000002", "900000000000003"]
    assert response.json["skipped"] == 0
    stored = [store.leads.get(lead["id"]) for lead in leads]
    assert [(s.status, s.source, s.external_id) for s in stored] == [
        (LeadStatus.FETCHING, "fb-acme", leads[0]["id"]),
        (LeadStatus.FETCHING, "fb-acme", leads[1]["id"]),
        (LeadStatus.FETCHING, "fb-other-form", leads[2]["id"]),
    ]
    assert sorted(fetch_jobs(redis)) == sorted(lead["id"] for lead in leads)
    assert store.fetches.waiting() == 3 and store.batches.depth() == 0


def test_a_repeated_leadgen_id_returns_the_original_lead_and_creates_nothing(client, redis, store):
    first = post_signed(client, notification([leadgen("900000000000001")]))
    again = post_signed(client, notification([leadgen("900000000000001"), leadgen(900000000000001)]))

    [original] = first.json["leads"]
    assert [(lead["id"], lead["repeated"]) for lead in again.json["leads"]] == [(original["id"], True)] * 2
    assert stored_lead_ids(redis) == [original["id"]]
    assert fetch_jobs(redis) == [original["id"]]
    assert store.leads.status_counts()[LeadStatus.FETCHING] == 1


def test_ids_sent_as_json_numbers_are_kept_exactly_as_strings(client, redis):
    body = b'{"object":"page","entry":[{"id":100000000000001,"time":1,"changes":[{"field":"leadgen","value":'
    body += b'{"leadgen_id":912345678901234567,"page_id":100000000000001,"form_id":200000000000001}}]}]}'

    response = post_signed(client, body)

    assert response.json["leads"][0]["leadgenId"] == "912345678901234567"
    lead_key = keys.lead_key(response.json["leads"][0]["id"])
    assert redis.hget(lead_key, "meta_leadgen_id") == b"912345678901234567"
    assert redis.hget(lead_key, "meta_form_id") == b"200000000000001"


def test_a_change_for_an_unknown_page_and_form_is_skipped_with_its_ids_logged_and_answered_200(client, redis, caplog):
    payload = notification([leadgen("900000000000004", page_id="555", form_id="666")])

    with caplog.at_level(logging.WARNING, logger="app.meta"):
        response = post_signed(client, payload)

    assert response.status_code == 200
    assert response.json == {"leads": [], "skipped": 1}
    assert stored_lead_ids(redis) == [] and fetch_jobs(redis) == []
    [record] = [r for r in caplog.records if r.name == "app.meta"]
    assert (record.leadgen_id, record.page_id, record.form_id) == ("900000000000004", "555", "666")


def test_a_page_without_its_form_configured_routes_by_page(client, store):
    response = post_signed(client, notification([leadgen("900000000000005", form_id="209999")]))

    assert store.leads.get(response.json["leads"][0]["id"]).source == "fb-acme"


def test_an_unreadable_change_is_skipped_and_the_others_are_taken(client, store):
    payload = notification([leadgen("not-a-number"), {"field": "leadgen", "value": None}, leadgen("900000000000006")])

    response = post_signed(client, payload)

    assert response.status_code == 200
    assert [lead["leadgenId"] for lead in response.json["leads"]] == ["900000000000006"]
    assert response.json["skipped"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"not json", 400, id="not-json"),
        pytest.param(b"[1, 2]", 400, id="not-an-object"),
        pytest.param(b'{"object": "page"}', 422, id="no-entry"),
        pytest.param(b'{"entry": "x"}', 422, id="entry-not-a-list"),
    ],
)
def test_a_body_that_is_no_notification_is_refused_after_the_signature_check(client, redis, body, status):
    response = post_signed(client, body)

    assert response.status_code == status
    assert stored_lead_ids(redis) == []


def test_a_fetching_lead_shows_in_the_status_api_without_personal_data(client):
    response = post_signed(client, notification([leadgen("900000000000001")]))
    lead_id = response.json["leads"][0]["id"]

    status = client.get(f"/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json

    assert (status["status"], status["source"], status["externalId"], status["phone"]) == (
        "fetching",
        "fb-acme",
        lead_id,
        "",
    )
    assert status["events"][0]["detail"] == "announced by Meta's leadgen webhook"
