"""careCycle's answers to an upload: each turned into an `UploadResult` or the `CareCycleError` it stands for."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from workers.carecycle.errors import (
    CareCycleAuthError,
    CareCycleError,
    CareCycleNotFoundError,
    CareCycleRateLimitedError,
    CareCycleRedirectError,
    CareCycleRequestError,
    CareCycleTransientError,
    CareCycleUnrecognizedError,
    CareCycleValidationError,
)
from workers.redaction import Redactor

MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class UploadResult:
    """A processed batch: `failures` maps externalId -> careCycle's reason for each refused record;
    `confirmed` holds the externalIds careCycle lists as customers in `results` (None: no such list)."""

    succeeded: int
    failures: Mapping[str, str] = field(default_factory=dict)
    failed: int = 0
    confirmed: frozenset[str] | None = None


def classify_response(
    status: int, body: Mapping[str, Any], redact: Redactor | None = None, header_wait_seconds: float | None = None
) -> UploadResult:
    """Turn one careCycle answer into an `UploadResult` or raise the matching `CareCycleError`.

    The body's `code` decides where it is more specific than the status. careCycle's words are kept through
    `redact` (the upload's values and key taken out), as they reach logs and what operators see. A 429 waits
    the body's `retryAfter`, else the seconds of the `Retry-After` header (`header_wait`), else a minute.
    """
    redact = redact or Redactor()
    given = body.get("code")
    code = given if isinstance(given, str) and _CODE.fullmatch(given) else ""
    message = _describe(status, code, body.get("message"), redact)
    if 200 <= status < 300 and code not in _ERROR_CODES:
        return _success(status, message, body, redact)
    raise _error(status, code, message, body, redact, header_wait_seconds)


def _error(
    status: int, code: str, message: str, body: Mapping[str, Any], redact: Redactor, header_wait_seconds: float | None
) -> CareCycleError:
    """The error a failed answer is, by its code where it has one, else by its status."""
    if 300 <= status < 400:
        return CareCycleRedirectError(f"{message} (a redirect: check CARECYCLE_BASE_URL)", status)
    if code == "RATE_LIMIT_EXCEEDED" or status == 429:
        return CareCycleRateLimitedError(message, retry_after=_retry_after(body.get("retryAfter"), header_wait_seconds))
    if code == "VALIDATION_ERROR" or status == 422:
        record_messages = _record_messages(body.get("errors"), redact)
        if record_messages:
            return CareCycleValidationError(message, record_messages)
        return CareCycleRequestError(message, status)
    if code in ("UNAUTHORIZED", "FORBIDDEN") or status in (401, 403):
        return CareCycleAuthError(message, status)
    if code == "NOT_FOUND" or status == 404:
        return CareCycleNotFoundError(message, status, coded=code == "NOT_FOUND")
    if code == "INTERNAL_ERROR" or status >= 500 or status == 408:
        return CareCycleTransientError(message, status)
    if 400 <= status < 500:
        return CareCycleRequestError(message, status)
    return CareCycleTransientError(message, status)


# careCycle's documented error codes: a 2xx carrying one is that error.
_ERROR_CODES = frozenset(
    {"UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "VALIDATION_ERROR", "RATE_LIMIT_EXCEEDED", "INTERNAL_ERROR"}
)


_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")  # careCycle's codes (VALIDATION_ERROR, ...); other text is not one


def _describe(status: int, code: str, message: Any, redact: Redactor) -> str:
    text = f"careCycle {status}"
    if code:
        text += f" {code}"
    if isinstance(message, str) and message:
        text += f": {redact(message, MAX_MESSAGE_CHARS)}"
    return text


def _success(status: int, message: str, body: Mapping[str, Any], redact: Redactor) -> UploadResult:
    """A 2xx: a processed batch when it has that shape (a `succeeded` count). Anything else, such as the HTML
    page or empty body of a base URL that is not careCycle's, pauses delivery rather than passing for one."""
    if not _is_count(body.get("succeeded")):
        hint = "not careCycle's answer to an upload (no succeeded count): check CARECYCLE_BASE_URL"
        raise CareCycleUnrecognizedError(f"{message}: {hint}", status)
    return _processed(body, redact)


def _processed(body: Mapping[str, Any], redact: Redactor) -> UploadResult:
    failures: dict[str, str] = {}
    errors = body.get("errors")
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and item.get("externalId") is not None:
            failures[str(item["externalId"])] = redact(
                str(item.get("error") or "refused by careCycle"), MAX_MESSAGE_CHARS
            )
    results = body.get("results")
    confirmed = None
    if isinstance(results, list):
        confirmed = frozenset(
            str(item["externalId"]) for item in results if isinstance(item, dict) and item.get("externalId") is not None
        )
    return UploadResult(
        succeeded=_count(body.get("succeeded"), 0),
        failures=failures,
        failed=_count(body.get("failed"), len(failures)),
        confirmed=confirmed,
    )


def _count(value: Any, otherwise: int) -> int:
    return value if _is_count(value) else otherwise


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _record_messages(errors: Any, redact: Redactor) -> dict[int, str]:
    """Index -> reason for each record a VALIDATION_ERROR names by `path` (["records", i, field])."""
    found: dict[int, str] = {}
    for item in errors if isinstance(errors, list) else []:
        if not isinstance(item, dict):
            continue
        path = item.get("path")
        if isinstance(path, list) and len(path) >= 2 and path[0] == "records" and _is_count(path[1]):
            where = ".".join(str(p) for p in path[2:]) or "record"
            reason = redact(f"{where}: {item.get('message') or 'invalid'}", MAX_MESSAGE_CHARS)
            found[path[1]] = f"{found[path[1]]}; {reason}"[:MAX_MESSAGE_CHARS] if path[1] in found else reason
    return found


def header_wait(retry_after: str | None, date: str | None, now: float) -> float | None:
    """The seconds a `Retry-After` header asks to wait, in either of its forms: a number of seconds, or an HTTP-date
    (counted from the answer's `Date` when it has a readable one, so that a clock apart from careCycle's changes
    nothing; else from `now`, a Unix time). None when there is no header or it is neither."""
    if retry_after is None:
        return None
    seconds = _seconds(retry_after)
    if seconds is not None:
        return seconds
    until = _http_date(retry_after)
    if until is None:
        return None
    answered = _http_date(date) if date is not None else None
    return until - (now if answered is None else answered)


def _http_date(text: str) -> float | None:
    """An HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT") as a Unix time; None when it is none."""
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, as every HTTP-date is
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):
        return None


def _retry_after(given: Any, header: float | None) -> float:
    """The wait of a 429: the body's `retryAfter` when it is a usable number, else the header's, else a minute; at
    least a second and at most an hour."""
    seconds = _seconds(given)
    if seconds is None:
        seconds = header if header is not None and math.isfinite(header) else 60.0
    return min(max(seconds, 1.0), 3600.0)


def _seconds(value: Any) -> float | None:
    """A finite number of seconds, or None."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) else None
