"""careCycle errors, one class per thing delivery does about an upload that did not succeed.

Exceptions, grouped by what delivery does about them:

    CareCycleError
    ├── CareCycleTransientError          retry the same batch later with backoff
    │   ├── CareCycleConnectionError     no connection (refused, no such host, none in time), or one dropped
    │   ├── CareCycleAmbiguousError      timed out after sending: careCycle may have stored it
    │   │   └── CareCycleUnreadableError an answer too large, broken off, or of a shape no rule covers
    │   └── CareCycleRateLimitedError    429: wait `retry_after` seconds, then resend
    ├── CareCycleConfigurationError      pause all delivery; leads keep their attempts
    │   ├── CareCycleAuthError           401/403: wrong key or missing permission
    │   ├── CareCycleNotFoundError       404: wrong base URL or path (careCycle's own: a sourceId it does not know)
    │   ├── CareCycleRedirectError       3xx: the base URL is not careCycle's (redirects are not followed)
    │   └── CareCycleUnrecognizedError   2xx that is not careCycle's answer to an upload (no `succeeded` count)
    ├── CareCycleValidationError         422: reject records of `record_messages`, resend the rest
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

from collections.abc import Mapping


class CareCycleError(Exception):
    """An upload did not succeed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CareCycleTransientError(CareCycleError):
    """Server error, connection failure or timeout before sending: retry later."""


class CareCycleConnectionError(CareCycleTransientError):
    """No connection to careCycle, or one dropped before its answer. Told apart from careCycle's own errors in the
    request metric: the cause is on the relay's side as often (a wrong host in CARECYCLE_BASE_URL, the way out
    blocked)."""


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
    (CareCycleConnectionError, "connection_error"),
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
