"""Property tests of the intake endpoints: no body, header set or content type makes one answer 5xx.

The app runs with `testing = False` and PROPAGATE_EXCEPTIONS off, so an unhandled exception becomes the
500 that `register_error_handlers` builds: the property is simply "every answer is below 500".
Bodies are drawn as raw bytes, text, JSON of any shape, and JSON shaped like each endpoint's payload
(with valid credentials, so the generated data reaches normalization and the store).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app import create_app
from app.sources import SourceKind, SourceRegistry
from tests.conftest import SOURCE_KEY
from tests.factories import make_source
from tests.support import FakeClock

GOOGLE_KEY = "google-key-for-properties-0123456789"
META_SECRET = "meta-app-secret-for-properties"
LANDING = "https://landing.example.com"
FORM_PATH = "/v1/forms/acme-dental"
GOOGLE_PATH = "/v1/webhooks/google/gads"
FACEBOOK_PATH = "/v1/webhooks/facebook"
MAX_EXAMPLES = 200

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
realistic_strings = st.sampled_from(
    ["2125550142", "+13125550187", "(212) 555-0142", "10001", "60601-1234", "Jane Example", "1/2/1950", "yes",
     "https://cert.trustedform.com/abc", LANDING + "/thanks", "California", "", " ", "\u0000", "\ud800"]
)  # fmt: skip
field_values = realistic_strings | json_values
LEAD_FIELDS = (
    "phone", "phoneNumber", "zip", "postalCode", "first_name", "last_name", "full_name", "email", "dob", "state",
    "timezone", "gender", "householdIncome", "customFields", "custom_fields", "externalId", "sourceId", "utm_source",
    "company_website", "_redirect", "consent", "consent_text", "tcpa_consent_text", "page_url",
    "xxTrustedFormCertUrl", "universal_leadid", "client_ip", "tcpa_consent_at",
)  # fmt: skip
GOOGLE_COLUMNS = (
    "FULL_NAME", "FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE_NUMBER", "POSTAL_CODE", "STREET_ADDRESS", "CITY", "REGION",
    "COUNTRY", "WORK_EMAIL", "WORK_PHONE", "COMPANY_NAME", "JOB_TITLE", "GOVERNMENT_ISSUED_ID_CPF_BR", "SERVICE",
    "OVER_18_AGE", "what_is_your_budget?", "", "UNKNOWN",
)  # fmt: skip

phones = st.sampled_from(["2125550142", "+13125550187", "(646) 555-0100 ext. 12", "+18005550100", "12"])
zips = st.sampled_from(["10001", "60601-1234", "99999", "", "0"])
# Half the leads carry a usable phone and ZIP, so generated data also reaches the store, not only refusals.
lead_objects = st.fixed_dictionaries(
    {"phone": phones, "zip": zips},
    optional={name: field_values for name in LEAD_FIELDS if name not in ("phone", "zip")},
) | st.dictionaries(st.sampled_from(LEAD_FIELDS) | st.text(max_size=12), field_values, max_size=10)
google_columns = st.fixed_dictionaries(
    {},
    optional={
        "column_id": st.sampled_from(GOOGLE_COLUMNS) | json_values,
        "column_name": st.text(max_size=30) | json_values,
        "string_value": field_values,
    },
)
realistic_columns = st.fixed_dictionaries(
    {
        "column_id": st.sampled_from(GOOGLE_COLUMNS),
        "string_value": realistic_strings | phones | zips | st.text(max_size=30),
    },
    optional={"column_name": st.text(max_size=30)},
)
well_formed_google_objects = st.fixed_dictionaries(
    {
        "google_key": st.just(GOOGLE_KEY),
        "lead_id": st.text(min_size=1, max_size=30),
        "user_column_data": st.lists(realistic_columns | google_columns, max_size=8),
    },
    optional={
        "is_test": st.booleans(),
        "campaign_id": st.integers(min_value=0, max_value=2**64),
        "gcl_id": field_values,
    },
)
google_objects = well_formed_google_objects | st.fixed_dictionaries(
    {"google_key": st.just(GOOGLE_KEY) | st.sampled_from(["", "wrong"]) | json_values},
    optional={
        "lead_id": st.text(max_size=30) | json_values,
        "user_column_data": st.lists(google_columns, max_size=6) | json_values,
        "is_test": st.booleans() | json_values,
        "form_id": st.integers() | st.text(max_size=25),
        "campaign_id": st.integers(min_value=0, max_value=2**64),
        "gcl_id": field_values,
        "Google_key": st.just(GOOGLE_KEY),
    },
)
meta_changes = st.fixed_dictionaries(
    {"field": st.sampled_from(["leadgen", "feed"]) | json_values},
    optional={
        "value": st.fixed_dictionaries(
            {},
            optional={
                "leadgen_id": st.text(max_size=20) | st.integers() | json_values,
                "form_id": st.sampled_from(["444", "555"]) | json_values,
                "page_id": st.sampled_from(["111", "222"]) | json_values,
                "created_time": st.integers() | json_values,
            },
        )
        | json_values
    },
)
meta_objects = st.fixed_dictionaries(
    {"object": st.just("page") | json_values},
    optional={"entry": st.lists(st.fixed_dictionaries({"changes": st.lists(meta_changes, max_size=3)}), max_size=3)},
)
CONTENT_TYPES = (
    "application/json", "application/json; charset=latin-1", "application/vnd.api+json",
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-16",
    "multipart/form-data", "multipart/form-data; boundary=xyz", "text/plain", "application/xml", "",
)  # fmt: skip


def body_strategy(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, str | None]]:
    """(body, content type): bytes, text, any JSON, endpoint-shaped JSON, or form fields (urlencoded/multipart)."""
    content_type = st.none() | st.sampled_from(CONTENT_TYPES) | header_text
    form_fields = st.dictionaries(st.sampled_from(LEAD_FIELDS) | st.text(max_size=12), st.text(max_size=40), max_size=8)
    shaped_json = st.tuples(
        shaped.map(_json_bytes), st.sampled_from(["application/json", "application/json; charset=utf-8"])
    )
    return st.one_of(
        shaped_json,
        shaped_json,
        shaped_json,
        st.tuples(st.binary(max_size=512), content_type),
        st.tuples(st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")), content_type),
        st.tuples(json_values.map(_json_bytes), content_type),
        st.tuples(form_fields, st.just("application/x-www-form-urlencoded") | st.just("multipart/form-data")),
    )


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


header_sets = st.fixed_dictionaries(
    {"X-Api-Key": st.sampled_from([SOURCE_KEY, SOURCE_KEY, SOURCE_KEY, "nope"]) | header_text},
    optional={
        "Authorization": st.just(f"Bearer {SOURCE_KEY}") | header_text,
        "Idempotency-Key": header_text,
        "Origin": st.sampled_from([LANDING, LANDING + "/", "null", "https://evil.example"]) | header_text,
        "Referer": header_text,
        "Accept": st.sampled_from(["application/json", "text/html", "*/*"]) | header_text,
        "Sec-Fetch-Mode": st.sampled_from(["cors", "navigate"]) | header_text,
        "X-Forwarded-For": header_text,
        "X-Request-ID": header_text,
        "X-Hub-Signature-256": header_text,
        "Content-Encoding": st.sampled_from(["gzip", "identity"]),
    },
)
ENDPOINTS = {
    "leads": ("/v1/leads", lead_objects | st.fixed_dictionaries({"leads": st.lists(lead_objects, max_size=3)})),
    "forms": (FORM_PATH, lead_objects),
    "google": (GOOGLE_PATH, google_objects),
    "facebook": (FACEBOOK_PATH, meta_objects),
}


def build_app(settings: Any) -> Any:
    sources = SourceRegistry(
        [
            make_source(slug="partner", kind=SourceKind.API, secret=SOURCE_KEY),
            make_source(
                slug="acme-dental",
                kind=SourceKind.FORM,
                allowed_origins=(LANDING,),
                redirect_allowlist=(LANDING + "/thanks",),
                thank_you_url=LANDING + "/thanks",
                rate_limit_per_ip_per_min=10**9,
                rate_limit_per_min=10**9,
                duplicate_window_seconds=86400,
            ),
            make_source(slug="gads", kind=SourceKind.GOOGLE, secret=GOOGLE_KEY),
            make_source(slug="meta", kind=SourceKind.FACEBOOK, page_ids=("111",), form_ids=("444",)),
        ]
    )
    configured = settings.replace(facebook_app_secret=META_SECRET)
    app = create_app(configured, redis=fakeredis.FakeRedis(), clock=FakeClock(), sources=sources)
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_no_request_to_an_intake_endpoint_is_answered_with_a_5xx(settings, endpoint):
    app = build_app(settings)
    path, shaped = ENDPOINTS[endpoint]
    app.url_map.bind("localhost").match(path, method="POST")  # raises NotFound if the endpoint is not routed
    client = app.test_client()

    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        method=st.sampled_from(["POST"] * 6 + ["OPTIONS", "GET", "PUT"]),
        body=body_strategy(shaped),
        headers=header_sets,
        sign=st.booleans(),
    )
    def check(method: str, body: tuple[Any, str | None], headers: dict[str, str], sign: bool) -> None:
        data, content_type = body
        if sign and isinstance(data, bytes):
            digest = hmac.new(META_SECRET.encode(), data, hashlib.sha256).hexdigest()
            headers = {**headers, "X-Hub-Signature-256": f"sha256={digest}"}
        response = client.open(path, method=method, data=data, content_type=content_type, headers=headers)
        assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])

    check()


DEEP_JSON = ("[" * 60_000).encode()
NESTED_LEAD = b'{"phone": "2125550142", "zip": "10001", "x": ' + b"[" * 600 + b"1" + b"]" * 600 + b"}"


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        pytest.param("forms", DEEP_JSON, id="forms-deep"),
        pytest.param("google", DEEP_JSON, id="google-deep"),
        pytest.param("forms", NESTED_LEAD, id="forms-nested-lead"),
        pytest.param("leads", DEEP_JSON, id="leads-deep"),
        pytest.param("facebook", DEEP_JSON, id="facebook-deep"),
        pytest.param("leads", NESTED_LEAD, id="leads-nested-lead"),
    ],
)
def test_json_nested_past_the_parsers_recursion_limit_is_refused_not_a_5xx(settings, endpoint, body):
    client = build_app(settings).test_client()
    digest = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Api-Key": SOURCE_KEY, "X-Hub-Signature-256": f"sha256={digest}"}

    response = client.post(ENDPOINTS[endpoint][0], data=body, content_type="application/json", headers=headers)

    assert response.status_code in (400, 413, 422)
