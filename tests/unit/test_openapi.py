"""`/openapi.json` documents every route, from the marshmallow schemas that validate; `/docs` reads it."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from app import MAX_CONTENT_LENGTH_BYTES
from app.api.facebook import META_MAX_BODY_BYTES
from app.api.forms import FORM_MAX_BODY_BYTES
from app.api.google import GOOGLE_MAX_BODY_BYTES
from app.openapi import documented_operations
from tests.conftest import OPS_TOKEN

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
    assert {"$ref": "#/components/schemas/CareCycleRecord"} in submit["requestBody"]["content"]["application/json"][
        "schema"
    ]["oneOf"]
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
                if status != "default" and 400 <= int(status) < 500:
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }, (method, path, status)


def test_docs_page_lists_every_operation(client):
    spec = client.get("/openapi.json").json
    page = client.get("/docs").get_data(as_text=True)

    for path in spec["paths"]:
        assert path in page


def test_docs_page_runs_no_script_and_is_framed_by_no_one(client):
    policy = client.get("/docs").headers["Content-Security-Policy"]

    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'none'" in policy


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
