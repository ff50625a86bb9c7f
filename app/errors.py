"""The HTTP error model: `ApiError` subclasses, one per client reaction, and the one JSON error shape.

ApiError
├── InvalidInputError      422 VALIDATION_ERROR (fields name what was expected)
├── BadRequestError        400 BAD_REQUEST (body not parseable at all)
├── UnauthorizedError      401 UNAUTHORIZED
│   └── WrongCredentialError   a credential presented that is none of the valid ones (logged once per change)
├── ForbiddenError         403 FORBIDDEN
├── NotFoundError          404 NOT_FOUND
├── ConflictError          409 CONFLICT (the resource's state forbids the action, e.g. retrying a delivered lead)
├── PayloadTooLargeError   413 PAYLOAD_TOO_LARGE
├── UnsupportedMediaTypeError 415 UNSUPPORTED_MEDIA_TYPE
├── TooManyRequestsError   429 RATE_LIMITED (sets Retry-After)
└── UnavailableError       503 UNAVAILABLE (Redis unreachable; sets Retry-After)

Domain errors mapped here: UnknownSourceError and LeadNotFoundError -> 404, OriginNotAllowedError -> 403,
RateLimitedError -> 429, GoogleKeyMissingError -> 401, GoogleKeyError -> 403, LeadNotRetryableError -> 409,
FingerprintSecretError -> 503 (logged naming LEADRELAY_ENCRYPTION_KEY, once per change).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Request, Response, jsonify, request
from marshmallow import ValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.crypto import FingerprintSecretError
from app.forms import OriginNotAllowedError
from app.google import GoogleKeyError, GoogleKeyMissingError
from app.logs import RepeatedTrouble, note_lead_ids
from app.ops import LeadNotRetryableError
from app.sources import UnknownSourceError
from app.store import LeadNotFoundError
from app.store.refusals import describe
from app.store.throttle import RateLimitedError

logger = logging.getLogger(__name__)

# Why an id names no lead, as an operator is told: a status URL is good only while its lead is held.
LEAD_GONE_REASON = (
    "none was taken in under this id, or it was deleted when its retention ran out"
    " (LEADRELAY_RETENTION_DAYS after it settled)"
)


class ApiError(Exception):
    """An error answered to the client as SPEC's `{"error": {"code", "message", "fields"}}`."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInputError(ApiError):
    status = 422
    code = "VALIDATION_ERROR"


class BadRequestError(ApiError):
    status = 400
    code = "BAD_REQUEST"


class UnauthorizedError(ApiError):
    status = 401
    code = "UNAUTHORIZED"

    def headers(self) -> dict[str, str]:
        # HTTP requires a 401 to name its scheme: a bearer token (ops tokens; source keys go in X-Api-Key too).
        return {"WWW-Authenticate": 'Bearer realm="leadrelay"'}


class WrongCredentialError(UnauthorizedError):
    """A source key or ops token was presented that is none of the valid ones; `credential` names its kind for the
    log ("ops token"), never its value."""

    def __init__(self, credential: str, fields: Mapping[str, Any]) -> None:
        super().__init__("invalid credentials", fields)
        self.credential = credential


class ForbiddenError(ApiError):
    status = 403
    code = "FORBIDDEN"


class NotFoundError(ApiError):
    status = 404
    code = "NOT_FOUND"


class ConflictError(ApiError):
    status = 409
    code = "CONFLICT"


class PayloadTooLargeError(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


def too_large(request: Request) -> PayloadTooLargeError:
    """The refusal of a body past the request's limit, naming the limit."""
    limit = request.max_content_length
    parts = f" in at most {request.max_form_parts} form fields" if request.mimetype == "multipart/form-data" else ""
    if not limit:
        return PayloadTooLargeError("the body is too large")
    return PayloadTooLargeError(
        f"the body may be at most {limit} bytes{parts}", {"body": [f"expected at most {limit} bytes{parts}"]}
    )


class UnsupportedMediaTypeError(ApiError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequestsError(ApiError):
    status = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class UnavailableError(ApiError):
    status = 503
    code = "UNAVAILABLE"

    def headers(self) -> dict[str, str]:
        # A client that resends at once finds Redis still away, and many of them at once hold it down.
        return {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}


# How long a client is asked to wait before it sends again what the store could not take: a Redis failover or
# restart takes seconds.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def error_response(status: int, code: str, message: str, fields: Mapping[str, Any] | None = None) -> Response:
    """The single place an error body is built."""
    response = jsonify({"error": {"code": code, "message": message, "fields": dict(fields or {})}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask, now: Callable[[], float] = time.monotonic) -> None:
    """Map every error a request can raise to SPEC's JSON error shape; `now` times the reminders of a trouble met on
    every request (Redis away, the fingerprint secret unreadable) and of wrong credentials."""
    _register_intake_error_handlers(app, now)
    _register_ops_error_handlers(app)
    _register_credential_error_handlers(app, now)

    app.register_error_handler(ApiError, _api_error_response)

    @app.errorhandler(ValidationError)
    def handle_validation_error(exc: ValidationError) -> Response:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        return error_response(422, "VALIDATION_ERROR", "the request is not valid", messages)

    @app.errorhandler(LeadNotFoundError)
    def handle_lead_not_found(exc: LeadNotFoundError) -> Response:
        return _api_error_response(NotFoundError(f"no such lead: {LEAD_GONE_REASON}"))

    @app.errorhandler(UnknownSourceError)
    def handle_unknown_source(exc: UnknownSourceError) -> Response:
        # Said by what the URL's slug should name, never the slug sent; a slug looked up as no kind is no URL's.
        expected = {"slug": [f"expected the slug of a {exc.kind} source the relay is configured with"]}
        return _api_error_response(NotFoundError("no such source", expected if exc.kind else None))

    redis_trouble = RepeatedTrouble(
        logger,
        now,
        "redis unavailable: %s",
        "redis still unavailable: %s (%d more requests answered 503 in %.0f s)",
    )

    @app.errorhandler(RedisError)
    def handle_redis_error(exc: RedisError) -> Response:
        redis_trouble.met(describe(exc))
        return _api_error_response(UnavailableError("the relay's store is unavailable; retry shortly"))

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        if isinstance(exc, RequestEntityTooLarge):
            return _api_error_response(too_large(request))
        code = (exc.name or "error").upper().replace(" ", "_")
        response = error_response(exc.code or 500, code, exc.description or exc.name or "error")
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(500, "INTERNAL_ERROR", "internal error")


def _register_intake_error_handlers(app: Flask, now: Callable[[], float]) -> None:
    """Map the domain errors of form and Google intake to their answers."""

    @app.errorhandler(OriginNotAllowedError)
    def handle_origin_not_allowed(exc: OriginNotAllowedError) -> Response:
        if exc.hidden:
            # Said in full: the page's author reads it in the browser, and the fix is one setting away.
            message = (
                "this form takes no posts from a page that hides its origin (Origin: null, sent for a page whose"
                " Referrer-Policy is no-referrer); the form's source may set accept_null_origin"
            )
            return _api_error_response(ForbiddenError(message, {"Origin": [_ORIGIN_EXPECTED]}))
        return _api_error_response(
            ForbiddenError("this origin may not post to this form", {"Origin": [_ORIGIN_EXPECTED]})
        )

    @app.errorhandler(RateLimitedError)
    def handle_rate_limited(exc: RateLimitedError) -> Response:
        return _api_error_response(TooManyRequestsError("too many posts; retry later", exc.retry_after_seconds))

    # Every lead meets it until the operator puts the key back: said once per change, like Redis away.
    secret_trouble = RepeatedTrouble(logger, now, "%s", "%s (still so: %d more requests answered 503 in %.0f s)")

    @app.errorhandler(FingerprintSecretError)
    def handle_fingerprint_secret(exc: FingerprintSecretError) -> Response:
        # Nothing is admitted under another secret's fingerprints (it would start every window afresh): the
        # client sends the lead again once the operator has put the key back.
        secret_trouble.met(str(exc))
        return _api_error_response(UnavailableError("the relay cannot take leads until its configuration is fixed"))

    @app.errorhandler(GoogleKeyMissingError)
    def handle_google_key_missing(exc: GoogleKeyMissingError) -> Response:
        return _api_error_response(UnauthorizedError("google_key required", {"google_key": [_GOOGLE_KEY_EXPECTED]}))

    @app.errorhandler(GoogleKeyError)
    def handle_google_key(exc: GoogleKeyError) -> Response:
        return _api_error_response(ForbiddenError("google_key not recognised", {"google_key": [_GOOGLE_KEY_EXPECTED]}))


_ORIGIN_EXPECTED = "expected the origin of a page listed in the form source's allowed_origins"
_GOOGLE_KEY_EXPECTED = "expected the key set on the lead form in Google Ads, as the source's secret_env holds it"


def _api_error_response(exc: ApiError) -> Response:
    response = error_response(exc.status, exc.code, exc.message, exc.fields)
    response.headers.update(exc.headers())
    return response


def _register_credential_error_handlers(app: Flask, now: Callable[[], float]) -> None:
    """Refuse a wrong source key or ops token, logging it once per change for each kind of credential.

    Guessing goes on unthrottled (only a secret's length, checked at start, keeps it from succeeding): it is said
    when it starts, then counted once a minute, so that a guesser or a client with an old token stands out without
    burying the rest of the log. The request's own line is kept as for any request."""
    wrong_credentials: dict[str, RepeatedTrouble] = {}

    @app.errorhandler(WrongCredentialError)
    def handle_wrong_credential(exc: WrongCredentialError) -> Response:
        trouble = wrong_credentials.get(exc.credential) or wrong_credentials.setdefault(  # atomic across threads
            exc.credential,
            RepeatedTrouble(
                logger,
                now,
                "refused a wrong %s",
                "still refusing wrong %ss (%d more refused in %.0f s)",
                level=logging.WARNING,
            ),
        )
        trouble.met(exc.credential)
        return _api_error_response(exc)


def _register_ops_error_handlers(app: Flask) -> None:
    """Map the domain errors of operator actions to their answers."""

    @app.errorhandler(LeadNotRetryableError)
    def handle_lead_not_retryable(exc: LeadNotRetryableError) -> Response:
        note_lead_ids([exc.lead_id])  # a lead that exists: its id is the relay's own, never a client's text
        return _api_error_response(ConflictError(exc.reason))
