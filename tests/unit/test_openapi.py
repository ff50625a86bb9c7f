"""`/openapi.json` documents every route, from the marshmallow schemas that validate; `/docs` reads it."""

from __future__ import annotations

import hashlib
import hmac
import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from app import MAX_CONTENT_LENGTH_BYTES, create_app
from app.api.facebook import META_MAX_BODY_BYTES
from app.api.forms import FORM_MAX_BODY_BYTES
from app.api.google import GOOGLE_MAX_BODY_BYTES
from app.models import LeadStatus
from app.openapi import documented_operations
from app.sources import SourceKind, SourceRegistry
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_source
from tests.intake_support import GOOGLE_KEY, LANDING, TEST_LEAD, form, form_source, google_source

# HEAD is implied by GET; OPTIONS is answered by Flask everywhere but the forms' CORS preflight.
IMPLIED = {"HEAD", "OPTIONS"}


def routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods or ():
            if method not in IMPLIED or (method == "OPTIONS" and rule.endpoint == "forms.preflight"):
                found.add((method, rule.rule))
    return found


def test_every_route_is_documented(app, client):
    spec = client.get("/openapi.json").json

    assert routes(app) == documented_operations(spec)


def test_the_document_is_valid_openapi_3(client):
    validate(client.get("/openapi.json").json)


def test_operations_describe_their_bodies_with_the_validating_schemas(client):
    spec = client.get("/openapi.json").json
    schemas = spec["components"]["schemas"]

    record = schemas["CareCycleRecord"]
    assert record["required"] == ["phoneNumber"]
    assert record["properties"]["gender"]["enum"] == ["Male", "Female", "Non-Binary", "Other", "Prefer Not to Say"]
    assert record["properties"]["firstName"]["maxLength"] == 255
    submit = spec["paths"]["/v1/leads"]["post"]
    assert {"$ref": "#/components/schemas/LeadSubmission"} in submit["requestBody"]["content"]["application/json"][
        "schema"
    ]["anyOf"]
    assert spec["paths"]["/v1/stats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Stats"
    }


def test_every_operation_has_the_error_shape_and_request_id_header(client):
    spec = client.get("/openapi.json").json

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (method, path)
            assert all("X-Request-ID" in r["headers"] for r in operation["responses"].values())
            for status, response in operation["responses"].items():
                if status != "default" and int(status) >= 400 and (path, status) != ("/readyz", "503"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }, (method, path, status)


def test_docs_page_lists_every_operation(client):
    spec = client.get("/openapi.json").json
    page = client.get("/docs").get_data(as_text=True)

    for path in spec["paths"]:
        assert path in page


def docs_section(page, method, path):
    start = page.index(f'<span class="method {method}">{method}</span> <code>{path}</code></h2>')
    return page[start : page.index("</section>", start)]


def test_docs_page_links_each_body_to_its_schema_and_names_the_headers_of_each_answer(client):
    page = client.get("/docs").get_data(as_text=True)

    intake = docs_section(page, "POST", "/v1/leads")
    assert 'href="#schema-LeadSubmission"' in intake and 'href="#schema-BulkSubmission"' in intake
    assert 'href="#schema-LeadAccepted"' in intake
    assert "Retry-After" in intake  # on its 503
    form = docs_section(page, "POST", "/v1/forms/{slug}")
    assert "Location" in form and "Retry-After" in form


def test_docs_page_shows_code_in_descriptions_as_code_not_backticks(client):
    page = client.get("/docs").get_data(as_text=True)

    intake = docs_section(page, "POST", "/v1/leads")
    assert "<code>Idempotency-Key</code>" in intake and "`" not in intake


def test_docs_page_runs_no_script_and_is_framed_by_no_one(client):
    policy = client.get("/docs").headers["Content-Security-Policy"]

    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("since", [1769851800, 1769851800.5, "1769851800", "2026-01-31T09:30:00Z"])
def test_retry_filter_documents_each_since_it_takes(client, since):
    filter_schema = client.get("/openapi.json").json["components"]["schemas"]["RetryFilter"]
    body = {"status": "dead", "since": since}

    response = client.post("/v1/leads/retry", json=body, headers={"Authorization": f"Bearer {OPS_TOKEN}"})

    assert response.status_code == 200
    jsonschema.validate(body, filter_schema)


def test_retry_filter_documents_only_the_statuses_a_retry_takes(client):
    spec = client.get("/openapi.json").json

    status = spec["components"]["schemas"]["RetryFilter"]["properties"]["status"]

    assert status["enum"] == ["dead", "rejected"]
    assert client.post(
        "/v1/leads/retry", json={"status": "queued"}, headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    ).json["error"]["fields"] == {"status": ["expected one of: dead, rejected"]}


def test_the_meta_notification_body_is_documented_with_the_entry_list_it_requires(client):
    spec = client.get("/openapi.json").json

    body = spec["paths"]["/v1/webhooks/facebook"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    notification = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]

    assert notification["required"] == ["entry"]
    assert notification["properties"]["entry"]["type"] == "array"


def readable_size(limit: int) -> str:
    return f"{limit // 1024 // 1024} MiB" if limit % (1024 * 1024) == 0 else f"{limit // 1024} KiB"


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        pytest.param("/v1/leads", MAX_CONTENT_LENGTH_BYTES, id="api"),
        pytest.param("/v1/leads/retry", MAX_CONTENT_LENGTH_BYTES, id="retry-filter"),
        pytest.param("/v1/forms/{slug}", FORM_MAX_BODY_BYTES, id="forms"),
        pytest.param("/v1/webhooks/google/{slug}", GOOGLE_MAX_BODY_BYTES, id="google"),
        pytest.param("/v1/webhooks/facebook", META_MAX_BODY_BYTES, id="meta"),
    ],
)
def test_every_body_limit_is_documented_as_a_413_naming_it(client, path, limit):
    spec = client.get("/openapi.json").json

    too_large = spec["paths"][path]["post"]["responses"]["413"]

    assert readable_size(limit) in too_large["description"]
    assert too_large["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_form_posts_document_their_rate_limit_answer_and_its_retry_after_header(client):
    spec = client.get("/openapi.json").json

    throttled = spec["paths"]["/v1/forms/{slug}"]["post"]["responses"]["429"]

    assert "Retry-After" in throttled["headers"]
    assert throttled["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_retrying_one_lead_documents_the_conflict_of_a_lead_it_cannot_retry(client):
    spec = client.get("/openapi.json").json

    conflict = spec["paths"]["/v1/leads/{lead_id}/retry"]["post"]["responses"]["409"]

    assert "dead" in conflict["description"] and "rejected" in conflict["description"]


def test_a_bulk_retry_documents_how_many_matching_leads_it_left_and_why(client):
    spec = client.get("/openapi.json").json

    answer = spec["paths"]["/v1/leads/retry"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    requeued = spec["components"]["schemas"][answer["$ref"].rsplit("/", 1)[-1]]

    assert requeued["required"] == ["requeued", "skipped", "skippedReasons"]
    assert requeued["properties"]["skippedReasons"]["additionalProperties"] == {"type": "integer"}
    assert "never" in requeued["properties"]["skippedReasons"]["description"]


# Refusals schemathesis cannot reach (they need a configured source, a signature, a setting left out): each is
# answered with a status its operation documents, in the error shape.
META_SECRET = "meta-app-secret"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
FORM, GOOGLE = "/v1/forms/acme-dental", "/v1/webhooks/google/gads"
LEADGEN = b'{"entry": [{"changes": [{"field": "leadgen", "value": {"leadgen_id": "1", "page_id": "2"}}]}]}'


def signed(body: bytes, secret: str = META_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


REFUSALS = [
    pytest.param("post", "/v1/leads", {"data": "x", "content_type": "text/plain"}, 415, id="api-media-type"),
    pytest.param("post", "/v1/leads", {"data": "{x", "content_type": "application/json"}, 400, id="api-not-json"),
    pytest.param("post", "/v1/leads", {"json": {"first_name": "Jane"}}, 422, id="api-invalid-lead"),
    pytest.param("post", "/v1/leads/nope/retry", {"headers": OPS}, 404, id="retry-unknown-lead"),
    pytest.param("post", "/v1/leads/retry", {"json": {"status": "queued"}, "headers": OPS}, 422, id="retry-filter"),
    pytest.param("get", "/v1/leads", {"query_string": {"limit": 0}, "headers": OPS}, 422, id="list-bad-limit"),
    pytest.param("get", "/v1/stats", {}, 401, id="stats-no-token"),
    pytest.param("post", FORM, {"json": form(), "headers": {"Origin": "https://elsewhere.example"}}, 403, id="origin"),
    pytest.param(
        "post",
        FORM,
        {"data": b"junk", "content_type": "multipart/form-data; boundary=x", "headers": {"Origin": LANDING}},
        400,
        id="form-unreadable-multipart",
    ),
    pytest.param("post", FORM, {"data": b"a=b", "content_type": "text/plain"}, 415, id="form-media-type"),
    pytest.param("post", FORM, {"json": {"zip": "10001"}, "headers": {"Origin": LANDING}}, 422, id="form-invalid"),
    pytest.param("post", "/v1/forms/nope", {"json": form()}, 404, id="form-unknown-source"),
    pytest.param("options", "/v1/forms/nope", {}, 404, id="preflight-unknown-source"),
    pytest.param("post", GOOGLE, {"json": {"lead_id": "1", "user_column_data": []}}, 401, id="google-no-key"),
    pytest.param(
        "post", GOOGLE, {"json": {"google_key": "wrong", "lead_id": "1", "user_column_data": []}}, 403, id="google-key"
    ),
    pytest.param("post", GOOGLE, {"json": {"google_key": GOOGLE_KEY}}, 422, id="google-no-lead"),
    pytest.param("post", "/v1/webhooks/google/nope", {"json": TEST_LEAD}, 404, id="google-unknown-source"),
    pytest.param("get", "/v1/webhooks/facebook", {"query_string": {"hub.mode": "subscribe"}}, 403, id="meta-handshake"),
    pytest.param("post", "/v1/webhooks/facebook", {"data": b"{}"}, 401, id="meta-unsigned"),
    pytest.param(
        "post", "/v1/webhooks/facebook", {"data": b"{}", "headers": signed(b"{}", "other")}, 403, id="meta-signature"
    ),
    pytest.param("post", "/v1/webhooks/facebook", {"data": b"[]", "headers": signed(b"[]")}, 400, id="meta-not-object"),
    pytest.param("post", "/v1/webhooks/facebook", {"data": b"{}", "headers": signed(b"{}")}, 422, id="meta-no-entry"),
]


@pytest.fixture
def refusing_client(settings, redis, clock):
    sources = [
        google_source(),
        form_source(),
        make_source(slug="partner", kind=SourceKind.API, secret=SOURCE_KEY),
        make_source(slug="fb", kind=SourceKind.FACEBOOK, page_ids=("2",)),
    ]
    meta_settings = settings.replace(facebook_app_secret=META_SECRET, facebook_verify_token="verify-token")
    app = create_app(meta_settings, redis=redis, clock=clock, sources=SourceRegistry(sources))
    return app.test_client()


@pytest.mark.parametrize(("method", "path", "request_args", "status"), REFUSALS)
def test_every_refusal_is_answered_with_a_status_its_operation_documents(
    refusing_client, method, path, request_args, status
):
    spec = refusing_client.get("/openapi.json").json
    request_args = {**request_args, "headers": {"X-Api-Key": SOURCE_KEY, **request_args.get("headers", {})}}

    response = getattr(refusing_client, method)(path, **request_args)

    operation = spec["paths"][documented_path(spec, path, method)][method]
    assert response.status_code == status, response.json
    assert str(status) in operation["responses"], f"{method.upper()} {path} does not document {status}"
    assert set(response.json) == {"error"} and set(response.json["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(
    ("settings_left_out", "method", "request_args"),
    [
        pytest.param(
            "FACEBOOK_VERIFY_TOKEN",
            "get",
            {"query_string": {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}},
            id="handshake",
        ),
        pytest.param("FACEBOOK_APP_SECRET", "post", {"data": b"{}", "headers": signed(b"{}")}, id="notification"),
    ],
)
def test_a_meta_refusal_for_a_setting_the_relay_lacks_is_documented_naming_it(
    settings, redis, clock, settings_left_out, method, request_args
):
    client = create_app(settings, redis=redis, clock=clock).test_client()
    spec = client.get("/openapi.json").json

    response = getattr(client, method)("/v1/webhooks/facebook", **request_args)

    assert response.status_code == 403 and settings_left_out in response.json["error"]["message"]
    assert settings_left_out in spec["paths"]["/v1/webhooks/facebook"][method]["responses"]["403"]["description"]


def documented_path(spec, path, method):
    """The spec's path template that a concrete path falls under for `method` (a literal path first)."""
    if method in spec["paths"].get(path, {}):
        return path
    for template in (t for t, operations in spec["paths"].items() if method in operations):
        pattern = "/".join("[^/]+" if part.startswith("{") else re.escape(part) for part in template.split("/"))
        if re.fullmatch(pattern, path):
            return template
    raise AssertionError(f"{path} is not documented")


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        pytest.param("a" * 128, True, id="128-characters"),
        pytest.param("trace-1.2_3:4", True, id="punctuation"),
        pytest.param("a" * 129, False, id="129-characters"),
        pytest.param("{3f2a}", False, id="braces"),
        pytest.param("a b", False, id="space"),
    ],
)
def test_the_request_id_header_documents_which_sent_ids_are_echoed(client, sent, echoed):
    spec = client.get("/openapi.json").json
    described = spec["paths"]["/healthz"]["get"]["responses"]["200"]["headers"]["X-Request-ID"]["description"]

    answered = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]

    assert (answered == sent) is echoed
    assert "1 to 128" in described and "letters, digits" in described


def test_the_api_lead_body_documents_what_intake_takes_rather_than_what_carecycle_is_sent(client):
    spec = client.get("/openapi.json").json
    submission = spec["components"]["schemas"]["LeadSubmission"]
    lead = {"phone": "212.555.0142", "zip": "10001", "dob": "1950-01-05", "sex": "m", "utm_source": "newsletter"}

    response = client.post("/v1/leads", json=lead, headers={"X-Api-Key": SOURCE_KEY})

    assert response.status_code == 202 and response.json["warnings"] == []
    jsonschema.validate(lead, submission)  # aliases, loose spellings and unmapped fields alike
    assert "sourceId" not in submission["properties"] and "leadCost" not in submission["properties"]
    assert submission["properties"]["phoneNumber"]["description"] == (
        "expected a US or Canadian phone number of 10 digits, e.g. (212) 555-0142"
    )


def test_the_times_of_the_stats_say_they_are_epoch_seconds(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]

    times = [
        schemas["Stats"]["properties"]["lastDeliveryAt"],
        *(schemas["Pause"]["properties"][name] for name in ("since", "nextProbeAt")),
    ]

    assert all("epoch seconds" in time.get("description", "") for time in times)


def test_the_stats_source_arg_says_it_narrows_the_counts_alone(client):
    parameters = client.get("/openapi.json").json["paths"]["/v1/stats"]["get"]["parameters"]

    (source,) = (parameter for parameter in parameters if parameter["name"] == "source")

    assert "`counts`" in source.get("description", "") and "relay-wide" in source["description"]


def test_the_stats_name_what_the_counts_are_of_before_since_when(client):
    properties = list(client.get("/openapi.json").json["components"]["schemas"]["Stats"]["properties"])

    assert properties[:3] == ["counts", "countsSource", "countsSourceSince"]  # as `leadrelay stats` prints them


@pytest.mark.parametrize(
    "schema",
    ["LeadAccepted", "BulkItemResult", "LeadSummary", "LeadStatus", "LeadEvent", "LeadgenLead", "GoogleLeadReceipt"],
)
def test_every_lead_status_in_an_answer_lists_the_statuses_it_may_hold(client, schema):
    field = client.get("/openapi.json").json["components"]["schemas"][schema]["properties"]["status"]

    assert [value for value in field["enum"] if value is not None] == [status.value for status in LeadStatus]
    # A status that may be null says so (OpenAPI 3.0: nullable, and null among its enum's values), and says when.
    assert (None in field["enum"]) is field.get("nullable", False) is (schema == "LeadgenLead")
    assert schema != "LeadgenLead" or "deleted" in field["description"]


@pytest.mark.parametrize(
    ("path", "request_args"),
    [
        pytest.param("/v1/leads", {"json": {"phone": "2125550142", "zip": "10001"}}, id="api"),
        pytest.param(FORM, {"data": form(), "headers": {"Origin": LANDING}}, id="form"),
        pytest.param(GOOGLE, {"json": TEST_LEAD}, id="google"),
        pytest.param("/v1/webhooks/facebook", {"data": LEADGEN, "headers": signed(LEADGEN)}, id="meta"),
    ],
)
def test_intake_documents_its_answer_while_redis_is_unreachable_as_one_to_retry(
    refusing_client, redis, path, request_args
):
    spec = refusing_client.get("/openapi.json").json
    redis.connection_pool.connection_kwargs["server"].connected = False
    request_args = {**request_args, "headers": {"X-Api-Key": SOURCE_KEY, **request_args.get("headers", {})}}

    response = refusing_client.post(path, **request_args)

    assert response.status_code == 503 and response.json["error"]["code"] == "UNAVAILABLE"
    assert "retry" in spec["paths"][documented_path(spec, path, "post")]["post"]["responses"]["503"]["description"]


@pytest.mark.parametrize(
    ("path", "request_args"),
    [
        pytest.param("/v1/leads", {"json": {"phone": "2125550142", "zip": "10001"}}, id="api"),
        pytest.param(FORM, {"data": form(), "headers": {"Origin": LANDING}}, id="form"),
    ],
)
def test_intake_says_when_to_retry_while_redis_is_unreachable_as_documented(refusing_client, redis, path, request_args):
    spec = refusing_client.get("/openapi.json").json
    redis.connection_pool.connection_kwargs["server"].connected = False
    request_args = {**request_args, "headers": {"X-Api-Key": SOURCE_KEY, **request_args.get("headers", {})}}

    response = refusing_client.post(path, **request_args)

    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    documented = spec["paths"][documented_path(spec, path, "post")]["post"]["responses"]["503"]
    assert "Retry-After" in documented["headers"]


def test_the_cors_headers_a_form_answers_an_allowed_page_with_are_documented(refusing_client):
    spec = refusing_client.get("/openapi.json").json["paths"]["/v1/forms/{slug}"]
    preflight = refusing_client.options(FORM, headers={"Origin": LANDING, "Access-Control-Request-Method": "POST"})
    post = refusing_client.post(FORM, data=form(), headers={"Origin": LANDING, "Accept": "application/json"})

    def cors(response):
        return {name for name in response.headers.keys() if name.startswith("Access-Control-")}

    assert preflight.status_code == 204 and post.status_code == 202
    assert cors(preflight) <= set(spec["options"]["responses"]["204"]["headers"])
    assert cors(post) <= set(spec["post"]["responses"]["202"]["headers"])


@pytest.mark.parametrize(
    ("path", "request_args"),
    [
        pytest.param("/v1/leads", {"json": {"phone": "2125550142", "zip": "10001"}}, id="api"),
        pytest.param(FORM, {"data": form(), "headers": {"Origin": LANDING}}, id="form"),
        pytest.param(GOOGLE, {"json": TEST_LEAD}, id="google"),
        pytest.param("/v1/webhooks/facebook", {"json": {"object": "page", "entry": []}}, id="meta"),
    ],
)
def test_intake_documents_its_refusal_of_a_compressed_body(refusing_client, path, request_args):
    client = refusing_client
    spec = client.get("/openapi.json").json
    headers = {"X-Api-Key": SOURCE_KEY, "Content-Encoding": "gzip", **request_args.get("headers", {})}

    response = client.post(path, **{**request_args, "headers": headers})

    assert response.status_code == 415
    assert (
        "Content-Encoding"
        in spec["paths"][documented_path(spec, path, "post")]["post"]["responses"]["415"]["description"]
    )


def test_the_error_schema_names_every_code_the_relay_answers(client):
    from app.errors import ApiError

    described = client.get("/openapi.json").json["components"]["schemas"]["ErrorDetail"]["properties"]["code"]

    codes = {error.code for error in ApiError.__subclasses__()} | {ApiError.code}
    assert codes <= set(re.findall(r"[A-Z][A-Z_]+[A-Z]", described["description"]))


def test_the_security_schemes_say_which_secret_each_carries(client):
    schemes = client.get("/openapi.json").json["components"]["securitySchemes"]

    assert "source" in schemes["sourceKey"]["description"]
    assert "source" in schemes["bearer"]["description"] and "ops token" in schemes["bearer"]["description"]


def test_every_operation_an_ops_token_opens_documents_both_headers_that_carry_it(client):
    spec = client.get("/openapi.json").json
    ops_operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if {"bearer": []} in operation.get("security", []) and {"sourceKey": []} not in operation["security"]
    ]

    assert len(ops_operations) >= 7
    for path, method, operation in ops_operations:
        assert {"opsToken": []} in operation["security"], f"{method.upper()} {path}"
    scheme = spec["components"]["securitySchemes"]["opsToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Ops-Token")
    assert client.get("/v1/stats", headers={"X-Ops-Token": OPS_TOKEN}).status_code == 200
