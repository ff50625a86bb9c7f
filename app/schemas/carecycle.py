"""The careCycle upload contract: the last, strict gate before a batch is uploaded.

Nothing here coerces or normalizes (that happens when a lead is accepted); a value either already
satisfies careCycle's contract or is reported, careCycle-style, by `validation_issues`.
Error messages are `Issue` strings that also carry a zod-like code, so the 422 body the sandbox
builds (and the relay's own pre-flight check) matches what careCycle answers.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema

from app.models import MAX_BATCH_RECORDS as MAX_BATCH_RECORDS  # re-exported: part of the contract

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_FIELD_KEY_CHARS = 100
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
GENDERS = ("Male", "Female", "Non-Binary", "Other", "Prefer Not to Say")
MARITAL_STATUSES = ("Single", "Married", "Divorced", "Widowed", "Separated", "Domestic Partnership")
TIMEZONE_ABBREVIATIONS = ("EST", "CST", "MST", "PST")

# re.ASCII: `\d` must not accept other scripts' digits; fullmatch, because `$` accepts a trailing "\n".
DATE_OF_BIRTH_PATTERN = re.compile(r"(0[1-9]|1[0-2])[-/](0[1-9]|[12]\d|3[01])[-/]\d{4}", re.ASCII)
PHONE_NUMBER_PATTERN = re.compile(r"\+1\d{10}|\d{10}|\(\d{3}\) \d{3}-\d{4}", re.ASCII)
POSTAL_CODE_PATTERN = re.compile(r"\d{5}", re.ASCII)


class Issue(str):
    """An error message that also carries the zod-style `code` and `expected` careCycle reports."""

    code: str
    expected: str

    def __new__(cls, message: str, code: str, expected: str) -> Issue:
        issue = super().__new__(cls, message)
        issue.code = code
        issue.expected = expected
        return issue


def type_name(value: Any) -> str:
    """Name a JSON value's type the way careCycle's `received` does, never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number" if is_finite_number(value) else "nan"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


def is_finite_number(value: float) -> bool:
    """Whether a JSON number is finite as careCycle reads it (a double): an integer past a double's range is not."""
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large to convert to a float
        return False


def contract_length(text: str) -> int:
    """A text's length as careCycle counts it: in UTF-16 code units, as JavaScript's `length` (careCycle's 422s
    are zod's), so a character beyond the Basic Multilingual Plane, such as an emoji, counts 2. Never below `len`."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2  # surrogatepass: JSON can carry a lone "\ud800"


def _invalid_type(expected: str, value: Any) -> ValidationError:
    return ValidationError(Issue(f"Expected {expected}, received {type_name(value)}", "invalid_type", expected))


# Host tz databases carry entries that are files, not zones careCycle knows.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules", "posix", "right"})


@functools.cache
def _iana_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def is_valid_timezone(name: str) -> bool:
    """Return whether careCycle accepts `name`: an IANA zone or one of `TIMEZONE_ABBREVIATIONS`."""
    return name in TIMEZONE_ABBREVIATIONS or name in _iana_timezones()


class _IssueErrors:
    """Mixin turning marshmallow's "required"/"null"/"invalid" errors into typed `Issue`s."""

    expected = "string"

    def make_error(self, key: str, **kwargs: Any) -> ValidationError:
        if key == "required":
            return ValidationError(Issue("Required", "invalid_type", self.expected))
        if key == "null":
            return ValidationError(Issue(f"Expected {self.expected}, received null", "invalid_type", self.expected))
        if key in {"invalid", "type"}:
            return ValidationError(Issue(f"Expected {self.expected}", "invalid_type", self.expected))
        return super().make_error(key, **kwargs)  # type: ignore[misc, no-any-return]


class ContractString(_IssueErrors, fields.Field[str]):
    """A string of bounded length, optionally matching a pattern (fullmatch)."""

    def __init__(
        self,
        *,
        max_length: int | None = None,
        min_length: int = 0,
        pattern: re.Pattern[str] | None = None,
        pattern_expected: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.min_length = min_length
        self.pattern = pattern
        self.pattern_expected = pattern_expected

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise _invalid_type("string", value)
        self._check_length(value)
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise ValidationError(
                Issue(f"Invalid format, expected {self.pattern_expected}", "invalid_string", self.pattern_expected)
            )
        return value

    def _check_length(self, value: str) -> None:
        exact = self.max_length is not None and self.min_length == self.max_length
        bound = f"exactly {self.max_length}" if exact else None
        length = contract_length(value)
        if self.max_length is not None and length > self.max_length:
            bound = bound or f"at most {self.max_length}"
            raise ValidationError(
                Issue(f"String must contain {bound} character(s)", "too_big", f"{bound} character(s)")
            )
        if length < self.min_length:
            bound = bound or f"at least {self.min_length}"
            raise ValidationError(
                Issue(f"String must contain {bound} character(s)", "too_small", f"{bound} character(s)")
            )


class EnumString(_IssueErrors, fields.Field[str]):
    """One of a fixed set of strings, compared exactly (no case folding)."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = choices
        self.expected = " | ".join(f"'{choice}'" for choice in choices)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise _invalid_type(self.expected, value)
        if value not in self.choices:
            raise ValidationError(
                Issue(f"Invalid enum value. Expected {self.expected}", "invalid_enum_value", self.expected)
            )
        return value


class Timezone(_IssueErrors, fields.Field[str]):
    """An IANA time zone name or EST/CST/MST/PST."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise _invalid_type("string", value)
        if not is_valid_timezone(value):
            expected = "IANA time zone or " + "/".join(TIMEZONE_ABBREVIATIONS)
            raise ValidationError(Issue(f"Invalid timezone, expected {expected}", "invalid_string", expected))
        return value


class Int32(_IssueErrors, fields.Field[int]):
    """A JSON integer within int32; booleans and floats are refused, not converted."""

    expected = "integer"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type("integer", value)
        if value > INT32_MAX:
            raise ValidationError(Issue(f"Number must be less than or equal to {INT32_MAX}", "too_big", "int32"))
        if value < INT32_MIN:
            raise ValidationError(Issue(f"Number must be greater than or equal to {INT32_MIN}", "too_small", "int32"))
        return value


class StrictBoolean(_IssueErrors, fields.Field[bool]):
    """A JSON boolean; "true", 1 and friends are refused."""

    expected = "boolean"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise _invalid_type("boolean", value)
        return value


class NonNegativeNumber(_IssueErrors, fields.Field[float]):
    """A finite JSON number >= 0 (int or float, never bool or a numeric string)."""

    expected = "number"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not is_finite_number(value):
            raise _invalid_type("number", value)
        if value < 0:
            raise ValidationError(Issue("Number must be greater than or equal to 0", "too_small", "number >= 0"))
        return value


class CustomFieldValue(_IssueErrors, fields.Field[Any]):
    """A custom field's value: string, number, boolean, list of strings or null."""

    expected = "string | number | boolean | string[] | null"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str | bool):
            return value
        if isinstance(value, int | float) and is_finite_number(value):
            return value
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        raise _invalid_type(self.expected, value)


class ContractList(_IssueErrors, fields.List[Any]):
    """A JSON array (never a tuple, set or string) of `min_length`..`max_length` items."""

    expected = "array"

    def __init__(self, inner: fields.Field[Any], *, min_length: int = 0, max_length: int, **kwargs: Any) -> None:
        super().__init__(inner, **kwargs)
        self.min_length = min_length
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _invalid_type("array", value)
        if len(value) > self.max_length:
            bound = f"at most {self.max_length}"
            raise ValidationError(Issue(f"Array must contain {bound} element(s)", "too_big", f"{bound} item(s)"))
        if len(value) < self.min_length:
            bound = f"at least {self.min_length}"
            raise ValidationError(Issue(f"Array must contain {bound} element(s)", "too_small", f"{bound} item(s)"))
        return super()._deserialize(value, attr, data, **kwargs)


class ContractNested(_IssueErrors, fields.Nested):
    """A nested object; null and non-objects are typed issues."""

    expected = "object"


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
