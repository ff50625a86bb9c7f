"""The careCycle upload contract: the last, strict gate before a batch is uploaded.

Nothing here coerces or normalizes (that happens when a lead is accepted); a value either already
satisfies careCycle's contract or is reported, careCycle-style, by `validation_issues`.
Error messages are `Issue` strings that also carry a zod-like code, so the 422 body the sandbox
builds (and the relay's own pre-flight check) matches what careCycle answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, validates_schema

from app.models import MAX_BATCH_RECORDS as MAX_BATCH_RECORDS  # re-exported: part of the contract
from app.schemas.contractfields import (
    ContractList,
    ContractNested,
    ContractString,
    CustomFieldValue,
    EnumString,
    Int32,
    Issue,
    NonNegativeNumber,
    StrictBoolean,
    Timezone,
    type_name,
)

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_FIELD_KEY_CHARS = 100
GENDERS = ("Male", "Female", "Non-Binary", "Other", "Prefer Not to Say")
MARITAL_STATUSES = ("Single", "Married", "Divorced", "Widowed", "Separated", "Domestic Partnership")

# re.ASCII: `\d` must not accept other scripts' digits; fullmatch, because `$` accepts a trailing "\n".
DATE_OF_BIRTH_PATTERN = re.compile(r"(0[1-9]|1[0-2])[-/](0[1-9]|[12]\d|3[01])[-/]\d{4}", re.ASCII)
PHONE_NUMBER_PATTERN = re.compile(r"\+1\d{10}|\d{10}|\(\d{3}\) \d{3}-\d{4}", re.ASCII)
POSTAL_CODE_PATTERN = re.compile(r"\d{5}", re.ASCII)


class _ContractSchema(Schema):
    """Base: unknown keys and non-object input are typed issues (unknown keys are refused)."""

    error_messages: dict[str, str] = {
        "unknown": Issue("Unrecognized key in object", "unrecognized_keys", "never"),
        "type": Issue("Expected object", "invalid_type", "object"),
    }


class CustomFieldSchema(_ContractSchema):
    """One `customFields` item: `{"fieldKey": 1..100 chars, "value": ...}`."""

    fieldKey = ContractString(required=True, min_length=1, max_length=MAX_CUSTOM_FIELD_KEY_CHARS)
    value = CustomFieldValue(required=True, allow_none=True)


def _text(max_length: int) -> ContractString:
    return ContractString(max_length=max_length, allow_none=True)


class CareCycleRecordSchema(_ContractSchema):
    """One careCycle customer record, exactly as `POST /v2/leads/upload` accepts it."""

    phoneNumber = ContractString(
        required=True, pattern=PHONE_NUMBER_PATTERN, pattern_expected="+1XXXXXXXXXX, XXXXXXXXXX or (XXX) XXX-XXXX"
    )
    firstName = _text(255)
    lastName = _text(255)
    email = _text(255)
    postalCode = ContractString(
        min_length=5, max_length=5, pattern=POSTAL_CODE_PATTERN, pattern_expected="5 digits", allow_none=True
    )
    timezone = Timezone(allow_none=True)
    state = _text(50)
    city = _text(255)
    county = _text(255)
    address = _text(255)
    address2 = _text(255)
    dateOfBirth = ContractString(
        pattern=DATE_OF_BIRTH_PATTERN, pattern_expected="MM-DD-YYYY or MM/DD/YYYY", allow_none=True
    )
    language = _text(50)
    gender = EnumString(GENDERS, allow_none=True)
    maritalStatus = EnumString(MARITAL_STATUSES, allow_none=True)
    filingStatus = _text(50)
    dependentCount = Int32(allow_none=True)
    householdIncome = Int32(allow_none=True)
    isDecisionMaker = StrictBoolean(allow_none=True)
    medicaid = StrictBoolean(allow_none=True)
    medicaidNumber = _text(255)
    veteran = StrictBoolean(allow_none=True)
    vaNumber = _text(255)
    socialSecurityDisability = StrictBoolean(allow_none=True)
    carrierAssignedCustomerId = _text(255)
    healthSherpaCustomerId = _text(255)
    mbiNumber = _text(255)
    doNotCall = StrictBoolean(allow_none=True)
    doNotSMS = StrictBoolean(allow_none=True)
    doNotEmail = StrictBoolean(allow_none=True)
    doNotMail = StrictBoolean(allow_none=True)
    externalId = _text(255)
    sourceId = ContractString(allow_none=True)
    leadCost = NonNegativeNumber(allow_none=True)
    customFields = ContractList(ContractNested(CustomFieldSchema), max_length=MAX_CUSTOM_FIELDS, allow_none=True)

    @validates_schema
    def check_tcpa_location(self, data: dict[str, Any], **kwargs: Any) -> None:
        """TCPA: careCycle needs a postal code or a time zone to know when it may call."""
        if data.get("postalCode") is None and data.get("timezone") is None:
            raise ValidationError(Issue("postalCode or timezone is required (TCPA)", "custom", "postalCode | timezone"))


class UploadRequestSchema(_ContractSchema):
    """The upload body: `{"records": [1..200 records]}`."""

    records = ContractList(
        ContractNested(CareCycleRecordSchema), required=True, min_length=1, max_length=MAX_BATCH_RECORDS
    )


def validation_issues(body: Any) -> list[dict[str, Any]]:
    """Return careCycle-style 422 `errors` items for `body`, or [] when careCycle would accept it."""
    try:
        UploadRequestSchema().load(body)
    except ValidationError as error:
        return [_issue_item(body, path, message) for path, message in _flatten(error.messages, [])]
    return []


def _flatten(messages: Any, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    if isinstance(messages, Mapping):
        found: list[tuple[list[str | int], str]] = []
        for key, nested in messages.items():
            found.extend(_flatten(nested, path if key == "_schema" else [*path, key]))
        return found
    if isinstance(messages, list):
        return [item for message in messages for item in _flatten(message, path)]
    return [(path, messages)]


def _issue_item(body: Any, path: list[str | int], message: str) -> dict[str, Any]:
    return {
        "path": path,
        "message": str(message),
        "expected": getattr(message, "expected", "unknown"),
        "received": _received(body, path),
        "code": getattr(message, "code", "custom"),
    }


def _received(body: Any, path: list[str | int]) -> str:
    value = body
    for step in path:
        if isinstance(value, Mapping) and isinstance(step, str) and step in value:
            value = value[step]
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return "undefined"
    return type_name(value)
