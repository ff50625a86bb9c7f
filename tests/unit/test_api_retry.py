"""Operator retries over HTTP (one lead, or all matching a filter) and the audit trail they leave."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from app import create_app, ops
from app.models import LeadStatus
from app.queues import DELIVERY_QUEUE
from app.sources import SourceRegistry
from app.store import audit, keys
from app.store.audit import AuditEntry
from app.store.batches import Outcome
from app.store.retries import MAX_REQUEUE_BATCH
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_source, make_submission
from tests.storecheck import assert_indexes_consistent, leads_in
from tests.support import fail_second_requeue

SOURCE_EXPECTED = "expected a source slug: 1 to 63 lowercase letters, digits, - and _, starting with a letter or digit"
SINCE_EXPECTED = "expected an ISO 8601 time (2026-01-31T09:30:00Z) or epoch seconds"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
DAY = 86400


@pytest.fixture
def settings(settings):
    return settings.replace(leadrelay_ops_tokens={OPS_TOKEN: "alice", "ops-token-bob": "bob"})


def audit_entries(client, **args):
    response = client.get("/v1/audit", query_string=args, headers=OPS)
    assert response.status_code == 200, response.json
    return response.json["entries"]


@pytest.mark.parametrize("status", [LeadStatus.DEAD, LeadStatus.REJECTED])
def test_retry_requeues_a_failed_lead_now_keeping_its_attempts(client, store, cipher, clock, redis, status):
    [lead] = leads_in(store, cipher, clock, status)
    clock.advance(30)

    response = client.post(f"/v1/leads/{lead.id}/retry", headers=OPS)

    assert response.status_code == 200
    body = response.json
    assert body["status"] == "queued" and body["attempts"] == 1 and body["error"] is None
    assert body["batchId"] is None and body["nextAttemptAt"] is None  # nothing of the failed try is left to mislead
    assert body["events"][0]["status"] == "queued" and body["events"][0]["detail"] == "retried by alice"
    assert redis.zscore(keys.ready_key(), lead.id) == clock.now()
    assert Queue(DELIVERY_QUEUE, connection=redis).count == 1
    assert_indexes_consistent(store)


@pytest.mark.parametrize(
    "status", [LeadStatus.DELIVERED, LeadStatus.QUEUED, LeadStatus.SENDING, LeadStatus.SPAM, LeadStatus.FETCHING]
)
def test_retry_of_a_lead_neither_dead_nor_rejected_is_a_409_conflict(client, store, cipher, clock, status):
    [lead] = leads_in(store, cipher, clock, status)

    response = client.post(f"/v1/leads/{lead.id}/retry", headers=OPS)

    assert response.status_code == 409
    assert response.json["error"]["code"] == "CONFLICT"
    assert status.value in response.json["error"]["message"]
    assert store.leads.get(lead.id).status is status
    assert audit_entries(client) == []


def test_retry_of_a_failed_lead_without_a_record_is_a_409_conflict(client, store, cipher, clock, redis):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)
    redis.hdel(keys.lead_key(lead.id), "record")  # e.g. a Meta lead whose retrieval failed for good

    response = client.post(f"/v1/leads/{lead.id}/retry", headers=OPS)

    assert response.status_code == 409 and "no careCycle record to send" in response.json["error"]["message"]
    assert store.leads.get(lead.id).status is LeadStatus.DEAD


def test_retry_of_an_unknown_lead_is_a_404(client):
    response = client.post("/v1/leads/nope/retry", headers=OPS)

    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"


def test_retry_of_an_id_naming_another_key_of_a_lead_is_a_404(client, store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)

    response = client.post(f"/v1/leads/{lead.id}:events/retry", headers=OPS)

    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"


def test_retry_needs_an_ops_token(client, store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)

    assert client.post(f"/v1/leads/{lead.id}/retry").status_code == 401
    assert client.post("/v1/leads/retry", json={"status": "dead"}).status_code == 401
    assert store.leads.get(lead.id).status is LeadStatus.DEAD


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"status": "dead"}, {"web-dead-old", "web-dead-new", "partner-dead-new"}, id="status"),
        pytest.param({"status": "dead", "source": "web"}, {"web-dead-old", "web-dead-new"}, id="source"),
        pytest.param(
            {"status": "dead", "since": "2027-01-15T08:01:00Z"}, {"web-dead-new", "partner-dead-new"}, id="since"
        ),
        pytest.param({"status": "rejected"}, {"web-rejected-new"}, id="rejected"),
    ],
)
def test_bulk_retry_requeues_exactly_the_leads_matching_the_filter(client, store, cipher, clock, body, expected):
    clock.current = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    named = {}
    for name, status in (("web-dead-old", LeadStatus.DEAD), ("web-delivered-old", LeadStatus.DELIVERED)):
        named[name] = leads_in(store, cipher, clock, status, source="web")[0].id
    clock.advance(120)
    for name, status, source in (
        ("web-dead-new", LeadStatus.DEAD, "web"),
        ("partner-dead-new", LeadStatus.DEAD, "partner"),
        ("web-rejected-new", LeadStatus.REJECTED, "web"),
    ):
        named[name] = leads_in(store, cipher, clock, status, source=source)[0].id

    response = client.post("/v1/leads/retry", json=body, headers=OPS)

    assert response.status_code == 200
    assert response.json == {"requeued": len(expected), "skipped": 0, "skippedReasons": {}}
    queued = {name for name, lead_id in named.items() if store.leads.get(lead_id).status is LeadStatus.QUEUED}
    assert queued == expected
    assert_indexes_consistent(store)


def test_bulk_retry_counts_a_failed_lead_without_a_record_as_left_saying_why(client, store, cipher, clock, redis):
    [kept, recordless] = leads_in(store, cipher, clock, LeadStatus.DEAD, count=2)
    redis.hdel(keys.lead_key(recordless.id), keys.RECORD_FIELD)

    response = client.post("/v1/leads/retry", json={"status": "dead"}, headers=OPS)

    assert response.json == {
        "requeued": 1,
        "skipped": 1,
        "skippedReasons": {"the lead has no careCycle record to send, and no refused submission to normalize again": 1},
    }
    assert store.leads.get(kept.id).status is LeadStatus.QUEUED
    assert store.leads.get(recordless.id).status is LeadStatus.DEAD


def test_bulk_retry_pages_through_the_index_in_bounded_batches(client, store, cipher, clock, monkeypatch):
    monkeypatch.setattr(ops, "MAX_REQUEUE_BATCH", 2)
    dead = leads_in(store, cipher, clock, LeadStatus.DEAD, count=5, source="web")
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=3, source="partner")

    response = client.post("/v1/leads/retry", json={"status": "dead", "source": "web"}, headers=OPS)

    assert response.json["requeued"] == 5
    assert {lead.status for lead in store.leads.get_many(lead.id for lead in dead)} == {LeadStatus.QUEUED}
    assert store.leads.status_counts()[LeadStatus.DEAD] == 3


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param({}, "status", id="no-status"),
        pytest.param({"status": "delivered"}, "status", id="not-a-failed-status"),
        pytest.param({"status": "dead", "since": "last week"}, "since", id="bad-since"),
        pytest.param({"status": "dead", "source": ""}, "source", id="empty-source"),
        pytest.param({"status": "dead", "sauce": "web"}, "sauce", id="unknown-key"),
    ],
)
def test_bulk_retry_refuses_a_bad_filter_naming_the_field(client, store, cipher, clock, body, named):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)

    response = client.post("/v1/leads/retry", json=body, headers=OPS)

    assert response.status_code == 422 and list(response.json["error"]["fields"]) == [named]
    assert store.leads.get(lead.id).status is LeadStatus.DEAD


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({}, {"status": ["missing: expected one of: dead, rejected"]}, id="no-status"),
        pytest.param({"status": "lost"}, {"status": ["expected one of: dead, rejected"]}, id="not-a-status"),
        pytest.param(
            {"status": "dead", "sauce": "web"},
            {"sauce": ["unknown: expected only status, source or since"]},
            id="unknown-key",
        ),
        pytest.param({"status": "dead", "source": ""}, {"source": [SOURCE_EXPECTED]}, id="empty-source"),
        pytest.param({"status": "dead", "source": 5}, {"source": [SOURCE_EXPECTED]}, id="source-not-a-string"),
        pytest.param({"status": "dead", "source": None}, {"source": [SOURCE_EXPECTED]}, id="source-null"),
        pytest.param({"status": "dead", "source": "web\ud800"}, {"source": [SOURCE_EXPECTED]}, id="source-no-text"),
        pytest.param({"status": "dead", "source": "we\nb"}, {"source": [SOURCE_EXPECTED]}, id="source-unprintable"),
        pytest.param({"status": "dead", "since": None}, {"since": [SINCE_EXPECTED]}, id="since-null"),
    ],
)
def test_bulk_retry_refusal_says_what_was_expected(client, body, fields):
    response = client.post("/v1/leads/retry", json=body, headers=OPS)

    assert response.json["error"]["fields"] == fields


def test_bulk_retry_refuses_a_body_that_is_not_a_json_object(client):
    response = client.post("/v1/leads/retry", json=["dead"], headers=OPS)

    assert response.status_code == 400 and response.json["error"]["code"] == "BAD_REQUEST"


def test_every_retry_is_audited_newest_first_under_the_token_name_never_the_token(client, store, cipher, clock):
    [one] = leads_in(store, cipher, clock, LeadStatus.REJECTED)
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=2, source="web")
    client.post(f"/v1/leads/{one.id}/retry", headers=OPS)
    clock.advance(5)
    client.post("/v1/leads/retry", json={"status": "dead", "source": "web"}, headers={"X-Ops-Token": "ops-token-bob"})

    response = client.get("/v1/audit", headers=OPS)

    entries = response.json["entries"]
    assert [(e["action"], e["actor"], e["count"]) for e in entries] == [
        ("retry_leads", "bob", 2),
        ("retry_lead", "alice", 1),
    ]
    assert entries[0]["filter"] == {"status": "dead", "source": "web"} and entries[0]["leadId"] is None
    assert entries[1]["leadId"] == one.id and entries[1]["filter"] is None
    assert entries[0]["at"].endswith("Z")
    assert OPS_TOKEN not in response.get_data(as_text=True) and "ops-token-bob" not in response.get_data(as_text=True)


def test_audit_shows_the_since_of_a_filter_as_a_time(client, clock):
    client.post("/v1/leads/retry", json={"status": "dead", "since": 1_800_000_000}, headers=OPS)

    [entry] = audit_entries(client)

    assert entry["filter"] == {"status": "dead", "since": "2027-01-15T08:00:00.000Z"} and entry["count"] == 0


@pytest.mark.parametrize("since", [1e17, 1e20, "9999-12-31T23:59:59-01:00"])
def test_a_bulk_retry_since_a_time_no_audit_entry_could_show_is_refused_naming_since(client, since):
    response = client.post("/v1/leads/retry", json={"status": "dead", "since": since}, headers=OPS)

    assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["since"]
    assert "9999-12-31" in response.json["error"]["fields"]["since"][0]
    assert client.get("/v1/audit", headers=OPS).status_code == 200


def test_a_bulk_retry_cut_short_by_the_store_still_audits_the_leads_it_requeued(
    client, store, cipher, clock, monkeypatch
):
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=MAX_REQUEUE_BATCH + 100)
    fail_second_requeue(monkeypatch, RedisConnectionError("lost"))
    response = client.post("/v1/leads/retry", json={"status": "dead"}, headers=OPS)
    monkeypatch.undo()

    assert response.status_code == 503
    [entry] = audit_entries(client)
    assert (entry["action"], entry["actor"], entry["count"]) == ("retry_leads", "alice", MAX_REQUEUE_BATCH)


def test_audit_trail_keeps_only_the_newest_entries(client, monkeypatch):
    monkeypatch.setattr(audit, "MAX_AUDIT_ENTRIES", 3)
    for source in ("a", "b", "c", "d", "e"):
        client.post("/v1/leads/retry", json={"status": "dead", "source": source}, headers=OPS)

    entries = audit_entries(client, limit=10)

    assert [e["filter"]["source"] for e in entries] == ["e", "d", "c"]
    assert [e["filter"]["source"] for e in audit_entries(client, limit=1)] == ["e"]


def test_audit_trail_is_read_page_by_page_past_the_largest_page(client, store, clock):
    for n in range(1_005):
        store.audit.append(AuditEntry(clock.now() + n, "retry_lead", "alice", 1, lead_id=f"{n:032x}"))

    first = audit_entries(client, limit=1000)
    rest = audit_entries(client, limit=1000, offset=1000)

    assert len(first) == 1000 and len(rest) == 5
    assert [e["leadId"] for e in first + rest] == [f"{n:032x}" for n in reversed(range(1_005))]


@pytest.mark.parametrize("offset", ["-1", "10000", "x"])
def test_audit_refuses_a_bad_offset_naming_it(client, offset):
    response = client.get("/v1/audit", query_string={"offset": offset}, headers=OPS)

    assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["offset"]


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_audit_refuses_a_bad_limit_naming_it(client, limit):
    response = client.get("/v1/audit", query_string={"limit": limit}, headers=OPS)

    assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["limit"]


def test_audit_needs_an_ops_token(client):
    assert client.get("/v1/audit").status_code == 401


def test_a_single_retry_with_its_id_missing_is_not_redirected_to_the_bulk_retry(client):
    response = client.post("/v1/leads//retry", json={"status": "dead"}, headers=OPS)

    assert response.status_code == 404 and "Location" not in response.headers
    assert audit_entries(client) == []


@pytest.fixture
def windowed(settings, redis, clock):
    """A client of the relay whose partner source keeps the same phone again within a day as `duplicate`."""
    source = make_source(slug="partner", secret=SOURCE_KEY, duplicate_window_seconds=DAY)
    return create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()


def duplicate_of_a_rejected_lead(client, store, clock):
    """Lead A for a phone, then B for the same phone while A waits (B: `duplicate`); careCycle then rejects A."""
    submission = make_submission(phoneNumber="(312) 555-0199")
    first = client.post("/v1/leads", json=submission, headers={"X-Api-Key": SOURCE_KEY}).json["id"]
    clock.advance(60)
    again = client.post("/v1/leads", json=submission, headers={"X-Api-Key": SOURCE_KEY}).json
    assert again["status"] == "duplicate"
    batch = store.batches.claim(clock.now(), 200, 30)
    store.batches.settle(batch.id, [Outcome(first, LeadStatus.REJECTED, "refused", error="bad")], clock.now(), True)
    return first, again["id"]


def test_a_duplicate_of_a_lead_carecycle_rejected_says_which_lead_it_repeats(windowed, store, clock):
    first, duplicate = duplicate_of_a_rejected_lead(windowed, store, clock)

    body = windowed.get(f"/v1/leads/{duplicate}", headers=OPS).json

    assert body["status"] == "duplicate"
    assert body["events"][0]["detail"] == f"same phone as lead {first} within the duplicate window"
    assert windowed.get(f"/v1/leads/{first}", headers=OPS).json["status"] == "rejected"


def test_a_duplicate_retried_by_an_operator_is_queued_for_delivery_and_audited(windowed, store, clock, redis):
    _, duplicate = duplicate_of_a_rejected_lead(windowed, store, clock)
    clock.advance(30)

    response = windowed.post(f"/v1/leads/{duplicate}/retry", headers=OPS)

    assert response.status_code == 200, response.json
    assert response.json["status"] == "queued"
    assert response.json["events"][0]["detail"] == "retried by alice"
    assert redis.zscore(keys.ready_key(), duplicate) == clock.now()
    [entry] = audit_entries(windowed)
    assert (entry["action"], entry["actor"], entry["leadId"], entry["count"]) == ("retry_lead", "alice", duplicate, 1)
    assert_indexes_consistent(store)


def test_a_duplicate_can_still_be_retried_after_the_record_retention(windowed, store, clock, cipher, redis):
    _, duplicate = duplicate_of_a_rejected_lead(windowed, store, clock)
    clock.advance(3 * DAY)
    store.retention.purge(clock.now())

    response = windowed.post(f"/v1/leads/{duplicate}/retry", headers=OPS)

    assert response.status_code == 200 and response.json["status"] == "queued"
    [lead] = store.batches.claim(clock.now(), 200, 30).leads
    assert lead.id == duplicate
    assert cipher.open(redis.hget(keys.lead_key(duplicate), keys.RECORD_FIELD))["phoneNumber"] == "+13125550199"


def test_retry_of_a_duplicate_without_a_record_is_a_409_conflict_and_changes_nothing(client, store, cipher, clock):
    [duplicate] = leads_in(store, cipher, clock, LeadStatus.DUPLICATE)
    store.redis.hdel(keys.lead_key(duplicate.id), keys.RECORD_FIELD)  # purged under an earlier version

    response = client.post(f"/v1/leads/{duplicate.id}/retry", headers=OPS)

    assert response.status_code == 409
    assert response.json["error"]["message"] == (
        "the lead has no careCycle record left to send: it was deleted after the record retention"
    )
    assert store.leads.get(duplicate.id).status is LeadStatus.DUPLICATE
    assert audit_entries(client) == []


def test_a_bulk_retry_leaves_duplicates_alone(client, store, cipher, clock):
    [duplicate] = leads_in(store, cipher, clock, LeadStatus.DUPLICATE)

    response = client.post("/v1/leads/retry", json={"status": "duplicate"}, headers=OPS)

    assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["status"]
    assert store.leads.get(duplicate.id).status is LeadStatus.DUPLICATE
