"""CareCycleRecordSchema / UploadRequestSchema / validation_issues: careCycle's contract, field by field."""

import json

import pytest

from app.schemas.carecycle import (
    GENDERS,
    MARITAL_STATUSES,
    MAX_BATCH_RECORDS,
    CareCycleRecordSchema,
    UploadRequestSchema,
    validation_issues,
)
from app.schemas.contractfields import INT32_MAX, INT32_MIN, TIMEZONE_ABBREVIATIONS

CONTRACT_FIELDS = {
    "phoneNumber", "firstName", "lastName", "email", "postalCode", "timezone", "state", "city", "county",
    "address", "address2", "dateOfBirth", "language", "gender", "maritalStatus", "filingStatus",
    "dependentCount", "householdIncome", "isDecisionMaker", "medicaid", "medicaidNumber", "veteran",
    "vaNumber", "socialSecurityDisability", "carrierAssignedCustomerId", "healthSherpaCustomerId",
    "mbiNumber", "doNotCall", "doNotSMS", "doNotEmail", "doNotMail", "externalId", "sourceId", "leadCost",
    "customFields",
}  # fmt: skip

FULL_RECORD = {
    "phoneNumber": "+15551234567",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "email": "ada@example.com",
    "postalCode": "10001",
    "timezone": "America/New_York",
    "state": "NY",
    "city": "New York",
    "county": "New York",
    "address": "1 Main St",
    "address2": "Apt 2",
    "dateOfBirth": "12-10-1955",
    "language": "English",
    "gender": "Female",
    "maritalStatus": "Married",
    "filingStatus": "Joint",
    "dependentCount": 2,
    "householdIncome": 85000,
    "isDecisionMaker": True,
    "medicaid": False,
    "medicaidNumber": "M123",
    "veteran": False,
    "vaNumber": "VA1",
    "socialSecurityDisability": False,
    "carrierAssignedCustomerId": "C-1",
    "healthSherpaCustomerId": "HS-1",
    "mbiNumber": "1EG4-TE5-MK73",
    "doNotCall": False,
    "doNotSMS": False,
    "doNotEmail": True,
    "doNotMail": False,
    "externalId": "lead-0001",
    "sourceId": "src_web",
    "leadCost": 12.5,
    "customFields": [{"fieldKey": "utm_campaign", "value": "spring"}, {"fieldKey": "lead_source", "value": None}],
}


def make_record(**overrides):
    record = {"phoneNumber": "+15551234567", "postalCode": "10001", "externalId": "lead-1"}
    record.update(overrides)
    return record


def issues_of(record):
    return [(issue["path"], issue["code"]) for issue in validation_issues({"records": [record]})]


def custom_fields(count):
    return [{"fieldKey": f"key_{i}", "value": i} for i in range(count)]


def test_schema_declares_every_contract_field():
    assert set(CareCycleRecordSchema().fields) == CONTRACT_FIELDS


def test_schema_accepts_a_full_record_unchanged():
    assert validation_issues({"records": [FULL_RECORD]}) == []
    assert CareCycleRecordSchema().load(FULL_RECORD) == FULL_RECORD


def test_schema_exports_contract_constants():
    assert MAX_BATCH_RECORDS == 200
    assert GENDERS == ("Male", "Female", "Non-Binary", "Other", "Prefer Not to Say")
    assert "Domestic Partnership" in MARITAL_STATUSES and len(MARITAL_STATUSES) == 6
    assert TIMEZONE_ABBREVIATIONS == ("EST", "CST", "MST", "PST")


@pytest.mark.parametrize("field", sorted(CONTRACT_FIELDS - {"phoneNumber", "postalCode"}))
def test_schema_accepts_null_for_optional_field(field):
    assert issues_of(make_record(**{field: None})) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("phoneNumber", "+15551234567", id="phone-plus-1"),
        pytest.param("phoneNumber", "5551234567", id="phone-10-digits"),
        pytest.param("phoneNumber", "(555) 123-4567", id="phone-formatted"),
        pytest.param("firstName", "a" * 255, id="first-name-255"),
        pytest.param("email", "e" * 255, id="email-255"),
        pytest.param("address2", "x" * 255, id="address2-255"),
        pytest.param("state", "s" * 50, id="state-50"),
        pytest.param("language", "l" * 50, id="language-50"),
        pytest.param("filingStatus", "f" * 50, id="filing-status-50"),
        pytest.param("postalCode", "02134", id="postal-leading-zero"),
        pytest.param("timezone", "America/Chicago", id="tz-iana"),
        pytest.param("timezone", "Pacific/Honolulu", id="tz-iana-hawaii"),
        *[pytest.param("timezone", tz, id=f"tz-{tz}") for tz in TIMEZONE_ABBREVIATIONS],
        pytest.param("dateOfBirth", "01-31-1990", id="dob-dashes"),
        pytest.param("dateOfBirth", "12/01/2000", id="dob-slashes"),
        pytest.param("dateOfBirth", "02-29-1999", id="dob-regex-only-not-calendar"),
        *[pytest.param("gender", gender, id=f"gender-{gender}") for gender in GENDERS],
        *[pytest.param("maritalStatus", status, id=f"marital-{status}") for status in MARITAL_STATUSES],
        pytest.param("dependentCount", 0, id="int-zero"),
        pytest.param("householdIncome", INT32_MAX, id="int32-max"),
        pytest.param("householdIncome", INT32_MIN, id="int32-min"),
        pytest.param("doNotCall", True, id="bool-true"),
        pytest.param("veteran", False, id="bool-false"),
        pytest.param("externalId", "e" * 255, id="external-id-255"),
        pytest.param("sourceId", "5f0c6e1e-0000-4000-8000-000000000000", id="source-uuid"),
        pytest.param("leadCost", 0, id="lead-cost-zero"),
        pytest.param("leadCost", 12.75, id="lead-cost-float"),
        pytest.param("customFields", [], id="custom-empty"),
        pytest.param("customFields", custom_fields(50), id="custom-50"),
        pytest.param("customFields", [{"fieldKey": "k" * 100, "value": "v"}], id="custom-key-100"),
        pytest.param("firstName", "\U0001f600" * 127 + "a", id="first-name-127-emoji-and-a-letter-is-255-units"),
        pytest.param("customFields", [{"fieldKey": "\U00020bb7" * 50, "value": "v"}], id="custom-key-50-astral-chars"),
        pytest.param("customFields", [{"fieldKey": "k", "value": ["a", "b"]}], id="custom-value-str-list"),
        pytest.param("customFields", [{"fieldKey": "k", "value": True}], id="custom-value-bool"),
        pytest.param("customFields", [{"fieldKey": "k", "value": 1.5}], id="custom-value-number"),
        pytest.param("customFields", [{"fieldKey": "k", "value": None}], id="custom-value-null"),
    ],
)
def test_schema_accepts_value_within_contract(field, value):
    assert issues_of(make_record(**{field: value})) == []


@pytest.mark.parametrize(
    ("field", "value", "subpath", "code"),
    [
        pytest.param("phoneNumber", "555-123-4567", [], "invalid_string", id="phone-dashes"),
        pytest.param("phoneNumber", "15551234567", [], "invalid_string", id="phone-11-digits-no-plus"),
        pytest.param("phoneNumber", "+445551234567", [], "invalid_string", id="phone-foreign"),
        pytest.param("phoneNumber", "5551234567\n", [], "invalid_string", id="phone-trailing-newline"),
        pytest.param("phoneNumber", "５５５１２３４５６７", [], "invalid_string", id="phone-fullwidth-digits"),
        pytest.param("phoneNumber", 5551234567, [], "invalid_type", id="phone-number-type"),
        pytest.param("phoneNumber", None, [], "invalid_type", id="phone-null"),
        pytest.param("firstName", "a" * 256, [], "too_big", id="first-name-256"),
        pytest.param("lastName", "a" * 256, [], "too_big", id="last-name-256"),
        pytest.param("email", "e" * 256, [], "too_big", id="email-256"),
        pytest.param("city", "c" * 256, [], "too_big", id="city-256"),
        pytest.param("county", "c" * 256, [], "too_big", id="county-256"),
        pytest.param("address", "a" * 256, [], "too_big", id="address-256"),
        pytest.param("medicaidNumber", "m" * 256, [], "too_big", id="medicaid-number-256"),
        pytest.param("vaNumber", "v" * 256, [], "too_big", id="va-number-256"),
        pytest.param("mbiNumber", "m" * 256, [], "too_big", id="mbi-256"),
        pytest.param("carrierAssignedCustomerId", "c" * 256, [], "too_big", id="carrier-id-256"),
        pytest.param("healthSherpaCustomerId", "h" * 256, [], "too_big", id="sherpa-id-256"),
        pytest.param("state", "s" * 51, [], "too_big", id="state-51"),
        pytest.param("language", "l" * 51, [], "too_big", id="language-51"),
        pytest.param("filingStatus", "f" * 51, [], "too_big", id="filing-status-51"),
        # careCycle counts length as JavaScript does, in UTF-16 units: a character beyond the BMP (an emoji) is 2.
        pytest.param("firstName", "\U0001f600" * 128, [], "too_big", id="first-name-128-emoji-is-256-units"),
        pytest.param("address", "a" * 254 + "\U0001f3e0", [], "too_big", id="address-254-and-an-emoji-is-256-units"),
        pytest.param("firstName", 7, [], "invalid_type", id="first-name-number"),
        pytest.param("postalCode", "1234", [], "too_small", id="postal-4"),
        pytest.param("postalCode", "123456", [], "too_big", id="postal-6"),
        pytest.param("postalCode", "1000a", [], "invalid_string", id="postal-letter"),
        pytest.param("postalCode", "10001-1234", [], "too_big", id="postal-zip-plus-4"),
        pytest.param("postalCode", 10001, [], "invalid_type", id="postal-number"),
        pytest.param("timezone", "Mars/Olympus_Mons", [], "invalid_string", id="tz-unknown"),
        pytest.param("timezone", "est", [], "invalid_string", id="tz-lowercase"),
        pytest.param("timezone", "EDT", [], "invalid_string", id="tz-daylight-abbrev"),
        pytest.param("timezone", -5, [], "invalid_type", id="tz-offset-number"),
        pytest.param("dateOfBirth", "13-01-1990", [], "invalid_string", id="dob-month-13"),
        pytest.param("dateOfBirth", "01-32-1990", [], "invalid_string", id="dob-day-32"),
        pytest.param("dateOfBirth", "1990-01-31", [], "invalid_string", id="dob-iso"),
        pytest.param("dateOfBirth", "1-31-1990", [], "invalid_string", id="dob-single-digit"),
        pytest.param("dateOfBirth", "01.31.1990", [], "invalid_string", id="dob-dots"),
        pytest.param("dateOfBirth", "01-31-90", [], "invalid_string", id="dob-two-digit-year"),
        pytest.param("gender", "female", [], "invalid_enum_value", id="gender-lowercase"),
        pytest.param("gender", "F", [], "invalid_enum_value", id="gender-letter"),
        pytest.param("maritalStatus", "single", [], "invalid_enum_value", id="marital-lowercase"),
        pytest.param("maritalStatus", 1, [], "invalid_type", id="marital-number"),
        pytest.param("dependentCount", "3", [], "invalid_type", id="int-string"),
        pytest.param("dependentCount", 3.0, [], "invalid_type", id="int-float"),
        pytest.param("dependentCount", True, [], "invalid_type", id="int-bool"),
        pytest.param("householdIncome", INT32_MAX + 1, [], "too_big", id="int32-overflow"),
        pytest.param("householdIncome", INT32_MIN - 1, [], "too_small", id="int32-underflow"),
        pytest.param("isDecisionMaker", "true", [], "invalid_type", id="bool-string"),
        pytest.param("medicaid", 1, [], "invalid_type", id="bool-int"),
        pytest.param("doNotSMS", "yes", [], "invalid_type", id="bool-yes"),
        pytest.param("externalId", "e" * 256, [], "too_big", id="external-id-256"),
        pytest.param("externalId", 42, [], "invalid_type", id="external-id-number"),
        pytest.param("sourceId", 42, [], "invalid_type", id="source-id-number"),
        pytest.param("leadCost", -0.01, [], "too_small", id="lead-cost-negative"),
        pytest.param("leadCost", "5", [], "invalid_type", id="lead-cost-string"),
        pytest.param("leadCost", True, [], "invalid_type", id="lead-cost-bool"),
        pytest.param("leadCost", float("nan"), [], "invalid_type", id="lead-cost-nan"),
        pytest.param("leadCost", float("inf"), [], "invalid_type", id="lead-cost-infinite"),
        pytest.param("leadCost", 10**400, [], "invalid_type", id="lead-cost-beyond-a-double"),
        pytest.param(
            "customFields", [{"fieldKey": "k", "value": 10**400}], [0, "value"], "invalid_type", id="custom-value-huge"
        ),
        pytest.param("customFields", {"fieldKey": "k", "value": 1}, [], "invalid_type", id="custom-object"),
        pytest.param("customFields", custom_fields(51), [], "too_big", id="custom-51"),
        pytest.param("customFields", ["k"], [0], "invalid_type", id="custom-item-string"),
        pytest.param("customFields", [{"fieldKey": "", "value": 1}], [0, "fieldKey"], "too_small", id="custom-key-0"),
        pytest.param(
            "customFields", [{"fieldKey": "k" * 101, "value": 1}], [0, "fieldKey"], "too_big", id="custom-key-101"
        ),
        pytest.param(
            "customFields",
            [{"fieldKey": "k" * 99 + "\U0001f914", "value": 1}],
            [0, "fieldKey"],
            "too_big",
            id="custom-key-99-and-an-emoji-is-101-units",
        ),
        pytest.param("customFields", [{"value": 1}], [0, "fieldKey"], "invalid_type", id="custom-key-missing"),
        pytest.param("customFields", [{"fieldKey": "k"}], [0, "value"], "invalid_type", id="custom-value-missing"),
        pytest.param(
            "customFields", [{"fieldKey": "k", "value": {"a": 1}}], [0, "value"], "invalid_type", id="custom-value-obj"
        ),
        pytest.param(
            "customFields", [{"fieldKey": "k", "value": [1, 2]}], [0, "value"], "invalid_type", id="custom-value-ints"
        ),
        pytest.param(
            "customFields",
            [{"fieldKey": "k", "value": 1, "extra": 2}],
            [0, "extra"],
            "unrecognized_keys",
            id="custom-unknown-key",
        ),
    ],
)
def test_schema_rejects_value_outside_contract(field, value, subpath, code):
    assert issues_of(make_record(**{field: value})) == [(["records", 0, field, *subpath], code)]


def test_schema_requires_phone_number():
    record = make_record()
    del record["phoneNumber"]

    [issue] = validation_issues({"records": [record]})

    assert issue == {
        "path": ["records", 0, "phoneNumber"],
        "message": "Required",
        "expected": "string",
        "received": "undefined",
        "code": "invalid_type",
    }


@pytest.mark.parametrize(
    ("location", "valid"),
    [
        pytest.param({"postalCode": "10001"}, True, id="postal-only"),
        pytest.param({"timezone": "America/Denver"}, True, id="timezone-only"),
        pytest.param({"postalCode": "10001", "timezone": "MST"}, True, id="both"),
        pytest.param({"postalCode": None, "timezone": "PST"}, True, id="null-postal-with-timezone"),
        pytest.param({}, False, id="neither"),
        pytest.param({"postalCode": None, "timezone": None}, False, id="both-null"),
    ],
)
def test_schema_requires_postal_code_or_timezone_for_tcpa(location, valid):
    record = {"phoneNumber": "5551234567", "externalId": "lead-1", **location}

    expected = [] if valid else [(["records", 0], "custom")]
    assert issues_of(record) == expected


def test_schema_rejects_unknown_field_without_echoing_its_value():
    record = make_record(ssn="123-45-6789")

    [issue] = validation_issues({"records": [record]})

    assert issue["path"] == ["records", 0, "ssn"]
    assert issue["code"] == "unrecognized_keys"
    assert issue["received"] == "string"
    assert "123-45-6789" not in json.dumps(issue)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("phoneNumber", "555-867-5309", id="phone"),
        pytest.param("dateOfBirth", "1955-12-10", id="dob"),
        pytest.param("email", "x" * 250 + "@secret.example", id="email"),
        pytest.param("gender", "Ms Secret", id="enum"),
        pytest.param("householdIncome", 98765432101, id="income"),
    ],
)
def test_validation_issues_never_echo_personal_values(field, value):
    issues = validation_issues({"records": [make_record(**{field: value})]})

    assert len(issues) == 1
    assert str(value) not in json.dumps(issues)
    assert issues[0]["received"] in {"string", "number"}


def test_validation_issues_point_at_the_bad_record_index():
    records = [make_record(externalId=f"lead-{i}") for i in range(5)]
    records[3]["phoneNumber"] = "12"
    records[4]["gender"] = "?"

    paths = [issue["path"] for issue in validation_issues({"records": records})]

    assert paths == [["records", 3, "phoneNumber"], ["records", 4, "gender"]]


@pytest.mark.parametrize(
    ("body", "path", "code", "received"),
    [
        pytest.param({"records": []}, ["records"], "too_small", "array", id="zero-records"),
        pytest.param({"records": [make_record()] * 201}, ["records"], "too_big", "array", id="201-records"),
        pytest.param({}, ["records"], "invalid_type", "undefined", id="records-missing"),
        pytest.param({"records": None}, ["records"], "invalid_type", "null", id="records-null"),
        pytest.param({"records": {"0": make_record()}}, ["records"], "invalid_type", "object", id="records-object"),
        pytest.param({"records": [7]}, ["records", 0], "invalid_type", "number", id="record-not-object"),
        pytest.param({"records": [None]}, ["records", 0], "invalid_type", "null", id="record-null"),
        pytest.param(
            {"records": [make_record()], "dryRun": True}, ["dryRun"], "unrecognized_keys", "boolean", id="unknown-top"
        ),
        pytest.param([make_record()], [], "invalid_type", "array", id="body-array"),
    ],
)
def test_validation_issues_for_the_request_envelope(body, path, code, received):
    [issue] = validation_issues(body)

    assert (issue["path"], issue["code"], issue["received"]) == (path, code, received)
    assert set(issue) == {"path", "message", "expected", "received", "code"}


def test_upload_request_schema_loads_a_full_batch():
    records = [make_record(externalId=f"lead-{i}") for i in range(MAX_BATCH_RECORDS)]

    assert UploadRequestSchema().load({"records": records}) == {"records": records}


@pytest.mark.parametrize("name", ["localtime", "Factory", "posixrules"])
def test_record_schema_refuses_tz_database_entries_that_are_not_zones(name):
    errors = CareCycleRecordSchema().validate({"phoneNumber": "+12125550142", "timezone": name})
    assert "timezone" in errors
