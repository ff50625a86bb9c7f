"""careCycle's field types: each checks a value as careCycle's (zod) schema does, coercing nothing, and reports a
refusal as an `Issue` carrying careCycle's code. The record and request built of them are `app.schemas.carecycle`.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
TIMEZONE_ABBREVIATIONS = ("EST", "CST", "MST", "PST")


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


def cut_to_contract_length(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters as careCycle counts them, never inside a character (an emoji's
    two code units stay together or go together)."""
    if contract_length(text) <= limit:
        return text
    units = text.encode("utf-16-le", "surrogatepass")[: 2 * limit]
    if 0xD800 <= int.from_bytes(units[-2:], "little") <= 0xDBFF:
        units = units[:-2]  # the first half of a character whose second half was cut off
    return units.decode("utf-16-le", "surrogatepass")


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
