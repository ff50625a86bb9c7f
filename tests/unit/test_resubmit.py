"""Retrying a lead whose submission normalization refused: normalized again under the source's settings of now."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from app import cli, create_app
from app.crypto import RecordCipher
from app.models import LeadStatus
from app.sources import SourceKind, SourceRegistry
from app.store import keys
from app.store.retries import RetryStore
from tests.conftest import OPS_TOKEN
from tests.factories import make_source, make_submission
from tests.intake_support import GOOGLE_KEY, google_source
from tests.storecheck import leads_in

URL = "/v1/webhooks/google/gads"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
BOB = {"Authorization": "Bearer ops-token-bob"}
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
def settings(settings):
    return settings.replace(leadrelay_ops_tokens={OPS_TOKEN: "alice", "ops-token-bob": "bob"})


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


def test_a_retried_lead_keeps_warnings_that_name_no_custom_field_key(client_with, store):
    body = copy.deepcopy(BODY)
    body["user_column_data"].append({"column_id": "call_jane.doe@example.com", "string_value": "x" * 300})
    lead_id = client_with(google_source()).post(URL, json=body).json["id"]
    fixed = client_with(google_source(field_map={"best_number": "phoneNumber"}))

    response = fixed.post(f"/v1/leads/{lead_id}/retry", headers=OPS)

    assert response.json["warnings"] == ["customFields: expected at most 255 characters; cut"]
    assert store.leads.get(lead_id).warnings == ("customFields: expected at most 255 characters; cut",)


def test_a_bulk_retry_after_the_fix_queues_the_kept_leads_too(client_with, rejected_lead_id, store):
    fixed = client_with(google_source(field_map={"best_number": "phoneNumber"}))

    response = fixed.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert response.json == {"requeued": 1, "skipped": 0, "skippedReasons": {}}
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
    assert bulk.json == {
        "requeued": 0,
        "skipped": 1,
        "skippedReasons": {"the kept submission still fails normalization: phoneNumber": 1},
    }
    assert store.leads.get(rejected_lead_id).status is LeadStatus.REJECTED
    assert redis.hexists(keys.lead_key(rejected_lead_id), keys.SUBMISSION_FIELD)
    assert store.batches.depth() == 0


def test_a_bulk_retry_says_how_many_matching_leads_it_left_and_why_naming_fields_never_values(
    client_with, rejected_lead_id, store, cipher, clock
):
    body = copy.deepcopy(BODY)
    body["lead_id"] = "lead-second"
    body["user_column_data"][0]["string_value"] = "(415) 555-0123"
    second = client_with(google_source()).post(URL, json=body).json["id"]
    [with_record] = leads_in(store, cipher, clock, LeadStatus.REJECTED, source="gads")
    unchanged = client_with(google_source())

    response = unchanged.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert response.json == {
        "requeued": 1,
        "skipped": 2,
        "skippedReasons": {"the kept submission still fails normalization: phoneNumber": 2},
    }
    assert "0199" not in response.get_data(as_text=True) and "0123" not in response.get_data(as_text=True)
    assert store.leads.get(with_record.id).status is LeadStatus.QUEUED
    assert {store.leads.get(i).status for i in (rejected_lead_id, second)} == {LeadStatus.REJECTED}


def test_a_bulk_retry_counts_a_lead_whose_source_is_gone_as_left_saying_why(client_with, rejected_lead_id):
    response = client_with().post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert response.json == {
        "requeued": 0,
        "skipped": 1,
        "skippedReasons": {"source 'gads' is no longer configured": 1},
    }


def test_a_bulk_retry_counts_a_lead_it_made_a_duplicate_as_left_without_naming_the_earlier_lead(client_with):
    fixed = google_source(field_map={"best_number": "phoneNumber"}, duplicate_window_seconds=86400)
    partner = make_source(slug="partner", kind=SourceKind.API, secret="partner-key", duplicate_window_seconds=86400)
    client_with(google_source()).post(URL, json=BODY)
    client = client_with(fixed, partner)
    first = client.post(
        "/v1/leads", json=make_submission(phoneNumber="(312) 555-0199"), headers={"X-Api-Key": "partner-key"}
    ).json["id"]

    response = client.post("/v1/leads/retry", json={"status": "rejected"}, headers=OPS)

    assert response.json["skippedReasons"] == {"now kept as duplicate: the same phone came within the window": 1}
    assert first not in response.get_data(as_text=True)


def test_the_cli_bulk_retry_prints_how_many_matching_leads_it_left_and_why(
    client_with, rejected_lead_id, store, redis, settings, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(cli, "_connect", lambda settings: redis)
    monkeypatch.setenv("LEADRELAY_SOURCES", str(tmp_path / "sources.toml"))
    (tmp_path / "sources.toml").write_text('[sources.gads]\nkind = "google"\nsecret_env = "GADS_KEY"\n')
    monkeypatch.setenv("GADS_KEY", GOOGLE_KEY)
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", settings.leadrelay_encryption_key)

    assert cli.main(["retry", "--status", "rejected"]) == 0

    assert json.loads(capsys.readouterr().out) == {
        "requeued": 0,
        "skipped": 1,
        "skippedReasons": {"the kept submission still fails normalization: phoneNumber": 1},
    }
    assert store.leads.get(rejected_lead_id).status is LeadStatus.REJECTED


def test_a_kept_lead_whose_source_is_gone_is_not_retried_and_says_why(client_with, rejected_lead_id):
    response = client_with().post(f"/v1/leads/{rejected_lead_id}/retry", headers=OPS)

    assert response.status_code == 409 and response.json["error"]["message"] == "source 'gads' is no longer configured"


def test_a_refused_google_lead_keeps_no_key_nor_national_id_and_shows_no_phone_it_was_refused_for(
    client_with, store, redis, settings
):
    body = copy.deepcopy(BODY)
    body["user_column_data"] += [
        {"column_id": "PHONE_NUMBER", "string_value": "(800) 555-0100"},
        {"column_id": "GOVERNMENT_ISSUED_ID_CPF_BR", "string_value": "123.456.789-09"},
    ]
    body["Google_key"] = body.pop("google_key")

    lead_id = client_with(google_source()).post(URL, json=body).json["id"]

    assert store.leads.get(lead_id).phone_masked == ""  # toll-free: not a valid lead phone, so nothing of it shows
    kept = RecordCipher(settings.leadrelay_encryption_key).open(
        redis.hget(keys.lead_key(lead_id), keys.SUBMISSION_FIELD)
    )
    assert "Google_key" not in kept and "google_key" not in kept
    assert [c["column_id"] for c in kept["user_column_data"]] == ["best_number", "POSTAL_CODE", "PHONE_NUMBER"]


def test_a_google_test_lead_is_not_sent_by_a_retry_unless_its_source_delivers_test_leads(client_with, store):
    # Rejected while the source delivered test leads (a test lead it keeps out is held as `test` instead).
    delivering = google_source(deliver_test_leads=True)
    lead_id = client_with(delivering).post(URL, json={**BODY, "is_test": True}).json["id"]
    fixed = google_source(field_map={"best_number": "phoneNumber"})

    refused = client_with(fixed).post(f"/v1/leads/{lead_id}/retry", headers=OPS)
    status_after_refusal = store.leads.get(lead_id).status
    allowed = client_with(dataclasses.replace(fixed, deliver_test_leads=True)).post(
        f"/v1/leads/{lead_id}/retry", headers=OPS
    )

    assert refused.status_code == 409
    assert refused.json["error"]["message"] == "a Google test lead: source 'gads' does not deliver test leads"
    assert status_after_refusal is LeadStatus.REJECTED
    assert allowed.status_code == 200 and allowed.json["status"] == "queued"


def test_the_same_person_within_the_duplicate_window_makes_the_retried_lead_a_duplicate(client_with, store):
    fixed = google_source(field_map={"best_number": "phoneNumber"}, duplicate_window_seconds=86400)
    partner = make_source(slug="partner", kind=SourceKind.API, secret="partner-key", duplicate_window_seconds=86400)
    lead_id = client_with(google_source()).post(URL, json=BODY).json["id"]
    client = client_with(fixed, partner)
    first = client.post(
        "/v1/leads", json=make_submission(phoneNumber="(312) 555-0199"), headers={"X-Api-Key": "partner-key"}
    )
    assert first.json["status"] == "queued"

    response = client.post(f"/v1/leads/{lead_id}/retry", headers=OPS)

    assert response.status_code == 409 and response.json["error"]["message"].startswith("now kept as duplicate: ")
    assert store.leads.get(lead_id).status is LeadStatus.DUPLICATE
    assert store.batches.depth() == 1  # the partner's lead only


def test_a_retry_that_makes_the_lead_a_duplicate_is_audited_under_the_token_name(client_with, store):
    fixed = google_source(field_map={"best_number": "phoneNumber"}, duplicate_window_seconds=86400)
    partner = make_source(slug="partner", kind=SourceKind.API, secret="partner-key", duplicate_window_seconds=86400)
    lead_id = client_with(google_source()).post(URL, json=BODY).json["id"]
    client = client_with(fixed, partner)
    client.post("/v1/leads", json=make_submission(phoneNumber="(312) 555-0199"), headers={"X-Api-Key": "partner-key"})

    response = client.post(f"/v1/leads/{lead_id}/retry", headers=BOB)

    assert response.status_code == 409 and store.leads.get(lead_id).status is LeadStatus.DUPLICATE
    [entry] = client.get("/v1/audit", headers=OPS).json["entries"]
    assert (entry["action"], entry["actor"], entry["leadId"], entry["count"]) == ("retry_lead", "bob", lead_id, 0)


def run_cli_on_fixed_sources(redis, tmp_path, monkeypatch, duplicate_window_days=0):
    """Point the CLI at this test's Redis and at a sources file whose field_map now reads the lead's phone."""
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[sources.gads]\nkind = "google"\nsecret_env = "GADS_KEY"\nduplicate_window_days = {duplicate_window_days}\n'
        '[sources.gads.field_map]\nbest_number = "phoneNumber"\n'
    )
    monkeypatch.setattr(cli, "_connect", lambda settings: redis)
    monkeypatch.setenv("LEADRELAY_SOURCES", str(sources))
    monkeypatch.setenv("GADS_KEY", GOOGLE_KEY)


def test_the_cli_retry_normalizes_a_kept_lead_again_as_the_web_tier_does(
    client_with, rejected_lead_id, store, redis, settings, tmp_path, monkeypatch, capsys
):
    run_cli_on_fixed_sources(redis, tmp_path, monkeypatch)
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", settings.leadrelay_encryption_key)

    assert cli.main(["retry", "--id", rejected_lead_id]) == 0

    assert store.leads.get(rejected_lead_id).status is LeadStatus.QUEUED
    capsys.readouterr()


def test_the_cli_retry_makes_a_lead_of_the_same_person_within_the_window_a_duplicate_as_the_web_tier_does(
    client_with, store, redis, settings, tmp_path, monkeypatch, capsys
):
    partner = make_source(slug="partner", kind=SourceKind.API, secret="partner-key", duplicate_window_seconds=86400)
    lead_id = client_with(google_source()).post(URL, json=BODY).json["id"]
    client_with(partner).post(
        "/v1/leads", json=make_submission(phoneNumber="(312) 555-0199"), headers={"X-Api-Key": "partner-key"}
    )
    run_cli_on_fixed_sources(redis, tmp_path, monkeypatch, duplicate_window_days=1)
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", settings.leadrelay_encryption_key)

    assert cli.main(["retry", "--id", lead_id]) == 1

    assert "now kept as duplicate" in capsys.readouterr().err
    assert store.leads.get(lead_id).status is LeadStatus.DUPLICATE
    assert store.batches.depth() == 1  # the partner's lead only


def test_the_cli_retries_leads_with_records_without_reading_the_sources_file(
    store, cipher, clock, redis, settings, monkeypatch
):
    [dead] = leads_in(store, cipher, clock, LeadStatus.DEAD)
    monkeypatch.setattr(cli, "_connect", lambda settings: redis)
    monkeypatch.setenv("LEADRELAY_SOURCES", "/nonexistent/sources.toml")
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", settings.leadrelay_encryption_key)

    assert cli.main(["retry", "--status", "dead"]) == 0

    assert store.leads.get(dead.id).status is LeadStatus.QUEUED


def test_a_cli_bulk_retry_without_the_encryption_key_fails_naming_it_instead_of_skipping_kept_leads(
    client_with, rejected_lead_id, store, redis, tmp_path, monkeypatch, capsys
):
    run_cli_on_fixed_sources(redis, tmp_path, monkeypatch)
    monkeypatch.delenv("LEADRELAY_ENCRYPTION_KEY", raising=False)

    code = cli.main(["retry", "--status", "rejected"])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "configuration error" in err and "LEADRELAY_ENCRYPTION_KEY" in err
    assert store.leads.get(rejected_lead_id).status is LeadStatus.REJECTED


def test_a_cli_bulk_retry_stopped_for_the_key_audits_and_says_the_leads_it_requeued_before_it_stopped(
    client_with, store, cipher, clock, redis, tmp_path, monkeypatch, capsys
):
    # An earlier lead careCycle refused (its record kept) shares the page with the kept lead, and is re-queued first.
    [refused_by_carecycle] = leads_in(store, cipher, clock, LeadStatus.REJECTED)
    clock.advance(1)
    kept_id = client_with(google_source()).post(URL, json=BODY).json["id"]
    run_cli_on_fixed_sources(redis, tmp_path, monkeypatch)
    monkeypatch.delenv("LEADRELAY_ENCRYPTION_KEY", raising=False)

    code = cli.main(["retry", "--status", "rejected"])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "LEADRELAY_ENCRYPTION_KEY" in err and "matching leads re-queued before it stopped: 1 (audited)" in err
    assert store.leads.get(refused_by_carecycle.id).status is LeadStatus.QUEUED
    assert store.leads.get(kept_id).status is LeadStatus.REJECTED
    [entry] = store.audit.recent(10)
    assert (entry.action, entry.actor, entry.count) == ("retry_leads", "cli:" + cli._os_user(), 1)


def test_a_cli_bulk_retry_without_the_sources_file_fails_naming_it_instead_of_skipping_kept_leads(
    client_with, rejected_lead_id, store, redis, settings, monkeypatch, capsys
):
    # A shell with the key but not LEADRELAY_SOURCES: a kept lead's source (Google, Meta) is in the file only.
    monkeypatch.setattr(cli, "_connect", lambda settings: redis)
    monkeypatch.delenv("LEADRELAY_SOURCES", raising=False)
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", settings.leadrelay_encryption_key)

    code = cli.main(["retry", "--status", "rejected"])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "configuration error" in err and "LEADRELAY_SOURCES" in err
    assert store.leads.get(rejected_lead_id).status is LeadStatus.REJECTED


def test_a_kept_submission_that_is_no_webhook_body_is_normalized_as_it_is(client_with, rejected_lead_id, redis, cipher):
    redis.hset(
        keys.lead_key(rejected_lead_id),
        keys.SUBMISSION_FIELD,
        cipher.seal({"phoneNumber": "(312) 555-0199", "postalCode": "10001"}),
    )

    response = client_with(google_source()).post(f"/v1/leads/{rejected_lead_id}/retry", headers=OPS)

    assert response.status_code == 200 and response.json["status"] == "queued"


def test_a_retry_that_finds_the_lead_taken_by_another_operators_retry_says_so(
    client_with, rejected_lead_id, store, monkeypatch
):
    fixed = client_with(google_source(field_map={"best_number": "phoneNumber"}))
    requeue = RetryStore.requeue
    calls = []

    def another_operator_first(self, lead_ids, now, detail, **options):
        calls.append(detail)
        if len(calls) == 1:  # between this retry's first look and its resubmission, bob's retry completes
            result = requeue(self, lead_ids, now, detail, **options)
            assert fixed.post(f"/v1/leads/{rejected_lead_id}/retry", headers=BOB).status_code == 200
            return result
        return requeue(self, lead_ids, now, detail, **options)

    monkeypatch.setattr(RetryStore, "requeue", another_operator_first)
    response = fixed.post(f"/v1/leads/{rejected_lead_id}/retry", headers=OPS)

    assert response.status_code == 409
    assert response.json["error"]["message"] == "a queued lead cannot be retried (another retry took it meanwhile)"
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1 and store.batches.depth() == 1
