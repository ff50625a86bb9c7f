"""The sandbox's switchable faults and the careCycle error bodies it answers with."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

AUTH_FAULT_STATUSES = (401, 403, 404)
DEFAULT_RATE_LIMIT_PER_MIN = 60
# Longer than the relay's default upload deadline (connect 5 s + read 30 s), so that a stall is a timeout.
DEFAULT_STALL_SECONDS = 45.0
DEFAULT_RETRY_AFTER_SECONDS = 60
REJECTED_PHONE_MESSAGE = "Invalid phone number"
# The faults that name phone numbers (in any spelling careCycle accepts).
PHONE_FAULTS = ("reject_phones", "invalid_phones", "choke_phones")

ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
ERROR_MESSAGES = {
    400: "Malformed request",
    401: "Invalid or missing API key",
    403: "API key lacks permission",
    404: "Not found",
    405: "Method not allowed",
    422: "Validation failed",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
}


def error_body(
    status: int, *, retry_after: int | None = None, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Build careCycle's `{"message", "code"}` body for an error status (plus retryAfter / errors)."""
    fallback_code = "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
    body: dict[str, Any] = {
        "message": ERROR_MESSAGES.get(status, "Request failed"),
        "code": ERROR_CODES.get(status, fallback_code),
    }
    if status == 429:
        body["retryAfter"] = DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after
    if status == 422:
        body["errors"] = errors or []
    return body


def normalize_phone(phone: str) -> str:
    """Reduce a phone number to its 10 NANP digits (a leading country code 1 is dropped)."""
    digits = re.sub(r"\D", "", phone, flags=re.ASCII)
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


@dataclass(frozen=True)
class Faults:
    """Every switch that changes how the sandbox answers; validated on construction."""

    error_rate: float = 0.0  # fraction of authorized, in-limit uploads answered 500
    timeout_rate: float = 0.0  # fraction of processed uploads (200/400/422) that stall before answering
    stall_seconds: float = DEFAULT_STALL_SECONDS
    auth_mode: int | None = None  # 401/403/404: every upload answered so
    down: bool = False  # every upload answered 503
    rate_limit_per_min: int = DEFAULT_RATE_LIMIT_PER_MIN
    reject_phones: frozenset[str] = frozenset()  # these numbers fail per record in a 200 answer
    invalid_phones: frozenset[str] = frozenset()  # these numbers make the whole upload a 422 naming them
    choke_phones: frozenset[str] = frozenset()  # these numbers make the whole upload a 500 (the server chokes)

    def __post_init__(self) -> None:
        for name in ("error_rate", "timeout_rate"):
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1")
        if self.stall_seconds < 0:
            raise ValueError("stall_seconds must be >= 0")
        if self.auth_mode is not None and self.auth_mode not in AUTH_FAULT_STATUSES:
            raise ValueError(f"auth_mode must be None or one of {AUTH_FAULT_STATUSES}")
        if isinstance(self.rate_limit_per_min, bool) or self.rate_limit_per_min < 1:
            raise ValueError("rate_limit_per_min must be a positive integer")
        # Stored normalized so that any accepted spelling of a number matches.
        for name in PHONE_FAULTS:
            object.__setattr__(self, name, frozenset(normalize_phone(p) for p in getattr(self, name)))

    def replace(self, **changes: Any) -> Faults:
        """Return a copy with `changes` applied (unknown names raise TypeError)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for the control endpoints."""
        return {
            **dataclasses.asdict(self),
            "reject_phones": sorted(self.reject_phones),
            "invalid_phones": sorted(self.invalid_phones),
            "choke_phones": sorted(self.choke_phones),
        }


@dataclass(frozen=True)
class ScriptedFailure:
    """One queued answer from `Sandbox.fail_next`."""

    status: int
    retry_after: int | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError("a scripted failure needs a 4xx or 5xx status")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")
