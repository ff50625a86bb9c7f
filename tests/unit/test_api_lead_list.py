"""`GET /v1/leads`: newest first, filtered by status, source and time through the indexes, cursor-paginated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marshmallow import Schema, fields
from redis.client import Pipeline

from app.models import LeadStatus
from app.schemas.ops import AuditArgsSchema, LeadListArgsSchema, RetryFilterSchema
from app.store import index, keys
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.storecheck import leads_in

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def listed(client, **args):
    response = client.get("/v1/leads", query_string=args, headers=OPS)
    assert response.status_code == 200, response.json
    return response.json


def listed_ids(client, **args):
    return [lead["id"] for lead in listed(client, **args)["leads"]]


def all_pages(client, **args):
    ids, cursor, pages = [], None, 0
    while True:
        body = listed(client, **args, **({"cursor": cursor} if cursor else {}))
        ids += [lead["id"] for lead in body["leads"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            return ids, pages


def test_lead_list_shows_newest_first_masked_and_without_events_or_personal_data(client, clock):
    first = client.post("/v1/leads", json=make_submission(firstName="Zelda"), headers={"X-Api-Key": SOURCE_KEY})
    clock.advance(1)
    second = client.post("/v1/leads", json=make_submission(email="zed@example.com"), headers={"X-Api-Key": SOURCE_KEY})

    body = listed(client)

    assert [lead["id"] for lead in body["leads"]] == [second.json["id"], first.json["id"]]
    assert body["nextCursor"] is None
    assert all(lead["phone"].startswith("+1******") and "events" not in lead for lead in body["leads"])
    text = str(body)
    assert "Zelda" not in text and "zed@example.com" not in text and "10001" not in text


# What SPEC says a lead's status gives: ids, times, counts, the error and warnings, and the masked phone; never other
# personal data. A field added to the status is a promise to every ops client, and may carry what it must not.
SPEC_STATUS_FIELDS = {
    "id",
    "source",
    "status",
    "receivedAt",
    "updatedAt",
    "attempts",
    "nextAttemptAt",
    "batchId",
    "deliveredAt",
    "error",
    "warnings",
    "externalId",
    "phone",
}


def test_a_lead_is_shown_with_the_fields_spec_names_and_no_other(client):
    submitted = make_submission(firstName="Zelda", email="zed@example.com", dateOfBirth="1950-01-02")
    lead_id = client.post("/v1/leads", json=submitted, headers={"X-Api-Key": SOURCE_KEY}).json["id"]

    shown = client.get(f"/v1/leads/{lead_id}", headers=OPS).json
    [in_the_list] = listed(client)["leads"]

    assert set(shown) == SPEC_STATUS_FIELDS | {"events"}
    assert set(in_the_list) == SPEC_STATUS_FIELDS
    assert all(set(event) == {"at", "status", "detail"} for event in shown["events"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param({"status": "dead"}, ["web-dead", "partner-dead"], id="status"),
        pytest.param({"source": "web"}, ["web-dead", "web-queued"], id="source"),
        pytest.param({"status": "dead", "source": "partner"}, ["partner-dead"], id="status-and-source"),
        pytest.param({"status": "rejected", "source": "web"}, [], id="nothing-matches"),
    ],
)
def test_lead_list_filters_by_status_and_source(client, store, cipher, clock, args, expected):
    named = {}
    for source, status in (("web", LeadStatus.QUEUED), ("partner", LeadStatus.DEAD), ("web", LeadStatus.DEAD)):
        [lead] = leads_in(store, cipher, clock, status, source=source)
        named[f"{source}-{status.value}"] = lead.id
        clock.advance(1)

    assert listed_ids(client, **args) == [named[name] for name in expected]


@pytest.mark.parametrize(
    "since",
    [
        pytest.param(lambda t: datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z"), id="iso-z"),
        pytest.param(lambda t: datetime.fromtimestamp(t, tz=UTC).replace(tzinfo=None).isoformat(), id="iso-naive-utc"),
        pytest.param(lambda t: str(int(t)), id="epoch"),
        pytest.param(lambda t: repr(float(t)), id="epoch-float"),
    ],
)
def test_lead_list_keeps_leads_received_since_a_time_given_as_iso_or_epoch(client, store, cipher, clock, since):
    leads_in(store, cipher, clock, LeadStatus.QUEUED)
    clock.advance(60)
    cutoff = clock.now()
    [recent] = leads_in(store, cipher, clock, LeadStatus.QUEUED)

    assert listed_ids(client, since=since(cutoff)) == [recent.id]


@pytest.mark.parametrize(
    "since",
    [
        pytest.param("2027-01-14T19:00:00-05:00", id="iso-with-an-offset"),
        pytest.param("20270115", id="iso-basic-date-not-epoch-seconds-of-1970"),
        pytest.param("2027-01-15T05:30:00 05:30", id="offset-whose-plus-a-url-query-turned-into-a-space"),
    ],
)
def test_lead_list_reads_since_as_iso_8601_writes_it(client, store, cipher, clock, since):
    clock.current = 1_799_967_600.0  # 2027-01-14T23:00:00Z
    leads_in(store, cipher, clock, LeadStatus.QUEUED)
    clock.advance(2 * 3600)
    [after_midnight] = leads_in(store, cipher, clock, LeadStatus.QUEUED)

    assert listed_ids(client, since=since) == [after_midnight.id]


def test_lead_list_pages_are_stable_when_leads_arrive_between_pages(client, store, cipher, clock):
    older = []
    for _ in range(5):
        older += leads_in(store, cipher, clock, LeadStatus.QUEUED)
        clock.advance(1)
    first = listed(client, limit=2)
    clock.advance(1)
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=3)  # newer than every page already handed out

    second = listed(client, limit=2, cursor=first["nextCursor"])
    third = listed(client, limit=2, cursor=second["nextCursor"])

    newest_first = [lead.id for lead in reversed(older)]
    pages = [[lead["id"] for lead in page["leads"]] for page in (first, second, third)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    assert third["nextCursor"] is None


def test_lead_list_pages_through_a_bulk_admitted_at_one_instant(client, store, cipher, clock):
    bulk = leads_in(store, cipher, clock, LeadStatus.QUEUED, count=7)

    ids, pages = all_pages(client, limit=3)

    assert sorted(ids) == sorted(lead.id for lead in bulk) and len(ids) == 7
    assert pages == 3


def test_lead_list_combined_filter_hands_back_a_cursor_when_its_scan_budget_runs_out(
    client, store, cipher, clock, monkeypatch
):
    monkeypatch.setattr(index, "SCAN_CHUNK", 2)
    monkeypatch.setattr(index, "MAX_SCANNED_PER_PAGE", 4)
    [wanted] = leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")
    clock.advance(1)
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=6, source="partner")
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=7, source="web")  # web's index is the larger one

    ids, pages = all_pages(client, status="dead", source="web", limit=5)

    assert ids == [wanted.id]
    assert pages == 2


def test_lead_list_limit_defaults_to_50_and_allows_200(client, store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=201)

    default = listed(client)
    most = listed(client, limit=200)

    assert len(default["leads"]) == 50 and default["nextCursor"] is not None
    assert len(most["leads"]) == 200 and most["nextCursor"] is not None


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param({"limit": "0"}, "limit", id="limit-zero"),
        pytest.param({"limit": "201"}, "limit", id="limit-over-200"),
        pytest.param({"limit": "ten"}, "limit", id="limit-not-a-number"),
        pytest.param({"status": "lost"}, "status", id="unknown-status"),
        pytest.param({"since": "yesterday"}, "since", id="since-not-a-time"),
        pytest.param({"since": "1e17"}, "since", id="since-past-year-9999"),
        pytest.param({"since": "9999-12-31T23:59:59-01:00"}, "since", id="since-past-year-9999-by-its-offset"),
        pytest.param({"cursor": "not-a-cursor"}, "cursor", id="cursor-garbage"),
        pytest.param({"stauts": "dead"}, "stauts", id="unknown-arg"),
    ],
)
def test_lead_list_refuses_a_bad_arg_naming_it(client, args, named):
    response = client.get("/v1/leads", query_string=args, headers=OPS)

    assert response.status_code == 422
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert list(response.json["error"]["fields"]) == [named]


def test_lead_list_takes_a_source_filter_as_long_as_the_longest_slug(client):
    response = client.get("/v1/leads", query_string={"source": "s" * 63}, headers=OPS)

    assert response.status_code == 200 and response.json["leads"] == []


SOURCE_EXPECTED = "expected a source slug: 1 to 63 lowercase letters, digits, - and _, starting with a letter or digit"
ALL_STATUSES = "fetching, queued, sending, retrying, delivered, rejected, dead, test, duplicate, spam"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param({"limit": "abc"}, {"limit": ["expected an integer from 1 to 200"]}, id="limit-not-a-number"),
        pytest.param({"limit": "1.5"}, {"limit": ["expected an integer from 1 to 200"]}, id="limit-a-fraction"),
        pytest.param({"limit": ""}, {"limit": ["expected an integer from 1 to 200"]}, id="limit-empty"),
        pytest.param({"limit": "0"}, {"limit": ["expected an integer from 1 to 200"]}, id="limit-zero"),
        pytest.param(
            {"since": "1800000000000"},
            {"since": ["expected epoch seconds, not milliseconds: a time from 1970-01-01 to 9999-12-31 (UTC)"]},
            id="since-in-milliseconds",
        ),
        pytest.param({"limit": "201"}, {"limit": ["expected an integer from 1 to 200"]}, id="limit-over-200"),
        pytest.param({"status": "nope"}, {"status": [f"expected one of: {ALL_STATUSES}"]}, id="unknown-status"),
        pytest.param({"status": ""}, {"status": [f"expected one of: {ALL_STATUSES}"]}, id="empty-status"),
        pytest.param({"source": ""}, {"source": [SOURCE_EXPECTED]}, id="empty-source"),
        pytest.param({"source": "s" * 64}, {"source": [SOURCE_EXPECTED]}, id="source-longer-than-a-slug"),
        pytest.param({"source": "Partner"}, {"source": [SOURCE_EXPECTED]}, id="source-in-capitals"),
        pytest.param({"source": "-partner"}, {"source": [SOURCE_EXPECTED]}, id="source-starting-with-a-dash"),
        pytest.param({"source": "web\x00"}, {"source": [SOURCE_EXPECTED]}, id="nul-in-source"),
        pytest.param({"source": "web\n"}, {"source": [SOURCE_EXPECTED]}, id="newline-after-source"),
    ],
)
def test_lead_list_refusal_says_what_was_expected(client, args, expected):
    response = client.get("/v1/leads", query_string=args, headers=OPS)

    assert response.status_code == 422 and response.json["error"]["fields"] == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param({"limit": "x"}, {"limit": ["expected an integer from 1 to 1000"]}, id="limit-not-a-number"),
        pytest.param({"limit": "1001"}, {"limit": ["expected an integer from 1 to 1000"]}, id="limit-over-1000"),
        pytest.param({"offset": "x"}, {"offset": ["expected an integer from 0 to 9999"]}, id="offset-not-a-number"),
        pytest.param({"offset": "-1"}, {"offset": ["expected an integer from 0 to 9999"]}, id="offset-negative"),
    ],
)
def test_audit_refusal_says_what_was_expected(client, args, expected):
    response = client.get("/v1/audit", query_string=args, headers=OPS)

    assert response.status_code == 422 and response.json["error"]["fields"] == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/v1/leads", "unknown: expected only status, source, since, limit or cursor", id="lead-list"),
        pytest.param("/v1/audit", "unknown: expected only limit or offset", id="audit"),
    ],
)
def test_an_unknown_query_arg_is_refused_saying_which_args_there_are(client, path, expected):
    response = client.get(path, query_string={"stauts": "dead"}, headers=OPS)

    assert response.json["error"]["fields"] == {"stauts": [expected]}


@pytest.mark.parametrize("name", ["status", "source"])
def test_lead_list_refuses_a_filter_given_twice_instead_of_keeping_the_first(client, store, cipher, clock, name):
    leads_in(store, cipher, clock, LeadStatus.DEAD, source="partner")
    leads_in(store, cipher, clock, LeadStatus.REJECTED, source="web")
    values = {"status": ["dead", "rejected"], "source": ["web", "partner"]}[name]

    response = client.get("/v1/leads", query_string=[(name, value) for value in values], headers=OPS)

    assert response.status_code == 422
    assert response.json["error"]["fields"] == {name: ["expected once: one value per request"]}


@pytest.fixture
def replies(redis, monkeypatch):
    """Every reply Redis gives from now on, to direct commands and in pipelines."""
    seen: list[object] = []
    direct = redis.execute_command

    def execute_command(*args, **options):
        seen.append(direct(*args, **options))
        return seen[-1]

    pipeline_execute = Pipeline.execute

    def execute(self, *args, **options):
        results = pipeline_execute(self, *args, **options)
        seen.extend(results)
        return results

    monkeypatch.setattr(redis, "execute_command", execute_command)
    monkeypatch.setattr(Pipeline, "execute", execute)
    return seen


@pytest.mark.parametrize("path", ["/v1/leads?status=dead&limit=200", "/v1/leads/{id}"])
def test_status_reads_leave_the_sealed_records_in_redis(client, store, cipher, clock, replies, path):
    # A dead lead keeps its record for a retry; the dashboard lists such leads every few seconds, and a record is
    # most of a lead's bytes: what the status API shows is read without it.
    leads = leads_in(store, cipher, clock, LeadStatus.DEAD, count=3)
    sealed = {store.redis.hget(keys.lead_key(lead.id), keys.RECORD_FIELD) for lead in leads}
    replies.clear()

    response = client.get(path.format(id=leads[0].id), headers=OPS)

    assert response.status_code == 200
    assert not sealed & set(_flattened(replies))


def _flattened(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _flattened(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _flattened(item)
    else:
        yield value


def test_lead_list_needs_an_ops_token(client):
    refused = client.get("/v1/leads")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="leadrelay"'
    assert client.get("/v1/leads", headers={"X-Api-Key": SOURCE_KEY}).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("get", "/v1/leads", 200, id="lead-list"),
        pytest.param("get", "/v1/leads/lead_does_not_exist", 404, id="a-lead-not-found"),
        pytest.param("get", "/v1/stats", 200, id="stats"),
        pytest.param("get", "/v1/audit", 200, id="audit"),
        pytest.param("get", "/metrics", 200, id="metrics"),
        pytest.param("post", "/v1/leads/lead_does_not_exist/retry", 404, id="retry"),
    ],
)
def test_what_an_ops_token_opens_is_answered_for_no_cache_to_keep(client, method, path, status):
    response = getattr(client, method)(path, headers={"Authorization": f"Bearer {OPS_TOKEN}"})

    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"


def marshmallows_own_messages():
    own = set(Schema._default_error_messages.values())
    for field_class in vars(fields).values():
        if isinstance(field_class, type) and issubclass(field_class, fields.Field):
            own |= {m for c in field_class.__mro__ for m in vars(c).get("default_error_messages", {}).values()}
    return own


@pytest.mark.parametrize("schema_class", [LeadListArgsSchema, RetryFilterSchema, AuditArgsSchema])
def test_no_refusal_of_an_ops_arg_is_one_of_marshmallows_own_messages(schema_class):
    # marshmallow's own ("Not a valid integer.", "Field may not be null.", "Length must be between 1 and 100.")
    # say what went wrong, never what was expected.
    schema, own = schema_class(), marshmallows_own_messages()

    for name, field in schema.fields.items():
        assert not own & set(field.error_messages.values()), name
        for validator in field.validators:
            assert getattr(validator, "error", None) not in (None, getattr(validator, "default_message", None)), name
    assert not own & set(schema.error_messages.values())
