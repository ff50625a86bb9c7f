"""careCycle upload client: one pooled session, explicit timeouts, every answer turned into a type.

Exceptions, grouped by what delivery does about them:

    CareCycleError
    ├── CareCycleTransientError          retry the same batch later with backoff
    │   ├── CareCycleAmbiguousError      timed out after sending: careCycle may have stored it
    │   │   └── CareCycleUnreadableError an answer too large, broken off, or of a shape no rule covers
    │   └── CareCycleRateLimitedError    429: wait `retry_after` seconds, then resend
    ├── CareCycleConfigurationError      pause all delivery; leads keep their attempts
    │   ├── CareCycleAuthError           401/403: wrong key or missing permission
    │   ├── CareCycleNotFoundError       404: wrong base URL or path
    │   ├── CareCycleRedirectError       3xx: the base URL is not careCycle's (redirects are not followed)
    │   └── CareCycleUnrecognizedError   2xx that is not careCycle's answer to an upload (no `succeeded` count)
    ├── CareCycleValidationError         422: reject records at `record_indexes`, resend the rest
    └── CareCycleRequestError            any other 4xx: something in the batch is unacceptable

A 200 with careCycle's processed-batch shape, even with per-record errors, is an `UploadResult`, not an
exception; a 2xx without it (an HTML page, an empty body: a base URL that is not careCycle's) is never taken
for a delivery. An answer that cannot be read (too slow, too large, malformed in a way no rule covers) is
ambiguous (`CareCycleAmbiguousError`, `CareCycleUnreadableError`): `upload` raises nothing else, so no answer
can stop delivery from settling its batch.
Messages carry careCycle's `code` and `message`, never the key: what careCycle writes is kept without the
values it may quote (`workers.redaction`), as its reasons reach logs, the status API and the dashboard.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import requests
import urllib3

from workers.redaction import Redactor

logger = logging.getLogger(__name__)

UPLOAD_PATH = "/v2/leads/upload"
MAX_MESSAGE_CHARS = 300
# How long past its deadline an upload waits for its request to report the deadline itself.
DEADLINE_GRACE_SECONDS = 0.5
# An answer to 200 records, each echoed in full, is well under a megabyte; anything far larger is not careCycle's.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class CareCycleError(Exception):
    """An upload did not succeed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CareCycleTransientError(CareCycleError):
    """Server error, connection failure or timeout before sending: retry later."""


class CareCycleAmbiguousError(CareCycleTransientError):
    """Timed out after the request was sent: careCycle may have stored the batch."""


class CareCycleUnreadableError(CareCycleAmbiguousError):
    """An answer came but could not be read: careCycle may have stored the batch."""


class CareCycleRateLimitedError(CareCycleTransientError):
    """429: no request may go before `retry_after` seconds have passed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class CareCycleConfigurationError(CareCycleError):
    """Every request would fail alike until the configuration is fixed: pause delivery."""


class CareCycleAuthError(CareCycleConfigurationError):
    """401/403: the API key is wrong or lacks permission."""


class CareCycleNotFoundError(CareCycleConfigurationError):
    """404: the base URL or path is wrong, or (careCycle's own `NOT_FOUND`, `coded`) it knows no record's
    `sourceId`."""

    def __init__(self, message: str, status: int | None = None, *, coded: bool = False) -> None:
        super().__init__(message, status)
        self.coded = coded


class CareCycleRedirectError(CareCycleConfigurationError):
    """3xx: the base URL answers with a redirect, which is not followed (it would turn the POST into a GET and
    hand the API key to another address)."""


class CareCycleUnrecognizedError(CareCycleConfigurationError):
    """A 2xx that is not careCycle's answer to an upload: taking it for a delivery could lose every lead."""


class CareCycleValidationError(CareCycleError):
    """422: the whole request was refused; `record_messages` maps record index -> reason."""

    def __init__(self, message: str, record_messages: Mapping[int, str]) -> None:
        super().__init__(message, status=422)
        self.record_messages = dict(record_messages)


class CareCycleRequestError(CareCycleError):
    """Another 4xx: something in this batch is unacceptable to careCycle."""


@dataclass(frozen=True)
class UploadResult:
    """A processed batch: `failures` maps externalId -> careCycle's reason for each refused record;
    `confirmed` holds the externalIds careCycle lists as customers in `results` (None: no such list)."""

    succeeded: int
    failures: Mapping[str, str] = field(default_factory=dict)
    failed: int = 0
    confirmed: frozenset[str] | None = None


class CareCycleClient:
    """Uploads batches of records to careCycle."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + UPLOAD_PATH
        self._timeout = (connect_timeout, read_timeout)
        self._key = api_key
        self._session = self._signed(session or requests.Session())

    def upload(self, records: Sequence[Mapping[str, Any]]) -> UploadResult:
        """Send 1..200 records; returns the processed result or raises a `CareCycleError`, nothing else.

        The whole answer must arrive within the connect and read timeouts together (not only each read), so
        an answer trickling in cannot keep a live worker's batch in flight past its visibility deadline. The
        HTTP library bounds each read of the answer's headers but not their sum, so the request runs on a
        thread of its own, waited for until that deadline; one given up on ends on its own, on its session,
        and the next upload opens a new one.
        """
        deadline = time.monotonic() + sum(self._timeout)
        outcome: queue.SimpleQueue[UploadResult | CareCycleError] = queue.SimpleQueue()
        session = self._session

        def exchange() -> None:
            try:
                outcome.put(self._exchange(session, records, deadline))
            except CareCycleError as exc:
                outcome.put(exc)

        thread = threading.Thread(target=exchange, name="carecycle-upload", daemon=True)
        thread.start()
        try:
            result = outcome.get(timeout=max(0.0, deadline - time.monotonic()) + DEADLINE_GRACE_SECONDS)
        except queue.Empty:
            self._session = self._signed(requests.Session())
            raise CareCycleAmbiguousError("careCycle did not answer in time") from None
        if isinstance(result, CareCycleError):
            raise result
        return result

    def _exchange(
        self, session: requests.Session, records: Sequence[Mapping[str, Any]], deadline: float
    ) -> UploadResult:
        """One request and its answer (on the upload's thread); raises a `CareCycleError`, nothing else."""
        try:
            response = session.post(
                self._url, json={"records": list(records)}, timeout=self._timeout, stream=True, allow_redirects=False
            )
        except requests.ConnectTimeout as exc:
            raise CareCycleTransientError("careCycle did not accept the connection in time") from exc
        except requests.ConnectionError as exc:
            raise CareCycleTransientError("careCycle could not be reached") from exc
        except requests.Timeout as exc:
            raise CareCycleAmbiguousError("careCycle did not answer in time") from exc
        except requests.RequestException as exc:
            raise CareCycleTransientError(f"request to careCycle failed: {type(exc).__name__}") from exc
        with response:
            body = _read_answer(response, deadline)
        try:
            redact = Redactor.of_records(records, [self._key])  # what careCycle's words may quote of the upload
            answer = _json_object(response.status_code, body)
            return classify_response(response.status_code, answer, redact, response.headers.get("Retry-After"))
        except CareCycleError:
            raise
        except Exception as exc:  # an answer no rule covers must still settle the batch, as an ambiguous one
            raise CareCycleUnreadableError(
                f"careCycle {response.status_code}: the answer could not be read ({type(exc).__name__})",
                response.status_code,
            ) from exc

    def _signed(self, session: requests.Session) -> requests.Session:
        """`session`, sending the key and the relay's name with every request."""
        session.headers.update({"x-api-key": self._key, "User-Agent": "leadrelay"})
        return session

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()


def outcome_label(error: CareCycleError | None) -> str:
    """A short, stable name for how an upload ended (the `outcome` label of the request metric)."""
    if error is None:
        return "ok"
    for kind, label in _OUTCOME_LABELS:
        if isinstance(error, kind):
            return label
    return "error"


_OUTCOME_LABELS: tuple[tuple[type[CareCycleError], str], ...] = (
    (CareCycleRateLimitedError, "rate_limited"),
    (CareCycleUnreadableError, "unreadable"),
    (CareCycleAmbiguousError, "timeout"),
    (CareCycleAuthError, "unauthorized"),
    (CareCycleNotFoundError, "not_found"),
    (CareCycleRedirectError, "redirect"),
    (CareCycleUnrecognizedError, "unrecognized"),
    (CareCycleValidationError, "validation_error"),
    (CareCycleRequestError, "request_error"),
    (CareCycleTransientError, "server_error"),
)


def _read_answer(response: requests.Response, deadline: float) -> bytes:
    """The answer's body, read by chunks against the overall deadline and the size cap."""
    status, chunks, size = response.status_code, [], 0
    try:
        # read1 returns as soon as some bytes arrived (iter_content would wait for a whole chunk), so the
        # deadline is checked at least once per read timeout however slowly the answer trickles in.
        while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):  # gzip/deflate undone as read
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise CareCycleUnreadableError(f"careCycle {status}: answer over {MAX_ANSWER_BYTES} bytes", status)
            if time.monotonic() > deadline:
                raise CareCycleAmbiguousError(f"careCycle {status}: the answer did not arrive in time", status)
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise CareCycleUnreadableError(f"careCycle {status}: answer broke off ({type(exc).__name__})", status) from exc
    return b"".join(chunks)


def _json_object(status: int, body: bytes) -> dict[str, Any]:
    """The answer as a JSON object; {} for anything else (empty, HTML, an array, nested past parsing).

    A 2xx body that opens as a JSON object but does not parse (cut short, most likely) may have been careCycle's
    account of the batch: `CareCycleUnreadableError`, retried as an ambiguous answer, not taken for some other
    server's page. Other statuses are read by their status when their body cannot be.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        if 200 <= status < 300 and body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            unreadable = f"careCycle {status}: the answer's JSON could not be read (cut short?)"
            raise CareCycleUnreadableError(unreadable, status) from None
        return {}
    return parsed if isinstance(parsed, dict) else {}


def classify_response(
    status: int, body: Mapping[str, Any], redact: Redactor | None = None, retry_after_header: str | None = None
) -> UploadResult:
    """Turn one careCycle answer into an `UploadResult` or raise the matching `CareCycleError`.

    The body's `code` decides where it is more specific than the status. careCycle's words are kept through
    `redact` (the upload's values and key taken out), as they reach logs and what operators see. A 429 waits
    the body's `retryAfter`, else the `Retry-After` header's seconds.
    """
    redact = redact or Redactor()
    given = body.get("code")
    code = given if isinstance(given, str) and _CODE.fullmatch(given) else ""
    message = _describe(status, code, body.get("message"), redact)
    if 200 <= status < 300 and code not in _ERROR_CODES:
        return _success(status, message, body, redact)
    raise _error(status, code, message, body, redact, retry_after_header)


def _error(
    status: int, code: str, message: str, body: Mapping[str, Any], redact: Redactor, retry_after_header: str | None
) -> CareCycleError:
    """The error a failed answer is, by its code where it has one, else by its status."""
    if 300 <= status < 400:
        return CareCycleRedirectError(f"{message} (a redirect: check CARECYCLE_BASE_URL)", status)
    if code == "RATE_LIMIT_EXCEEDED" or status == 429:
        given_wait = body.get("retryAfter") if body.get("retryAfter") is not None else retry_after_header
        return CareCycleRateLimitedError(message, retry_after=_retry_after(given_wait))
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


def _retry_after(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 60.0
    if not math.isfinite(seconds):
        return 60.0
    return min(max(seconds, 1.0), 3600.0)
