"""Plain domain types of the relay: lead statuses, leads, events. No Flask, no Redis."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# careCycle accepts 1 to 200 records in one upload request.
MAX_BATCH_RECORDS = 200


class LeadStatus(enum.StrEnum):
    """A lead's place in its lifecycle, spelled as in SPEC.md."""

    FETCHING = "fetching"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    DEAD = "dead"
    TEST = "test"
    DUPLICATE = "duplicate"
    SPAM = "spam"

    @property
    def is_final(self) -> bool:
        """True when no further delivery will happen without an operator's retry."""
        return self in _FINAL


_FINAL = frozenset(
    {LeadStatus.DELIVERED, LeadStatus.REJECTED, LeadStatus.DEAD, LeadStatus.TEST, LeadStatus.DUPLICATE, LeadStatus.SPAM}
)
PENDING_STATUSES = frozenset({LeadStatus.QUEUED, LeadStatus.SENDING, LeadStatus.RETRYING})
FINAL_STATUSES = _FINAL
# What an operator may send again, one by one or all matching a filter: the relay gave up on these.
RETRYABLE_STATUSES = frozenset({LeadStatus.REJECTED, LeadStatus.DEAD})
# What an operator may send again by its id: a `duplicate` too, since the earlier lead of its person, still on its
# way when the duplicate came, may never reach careCycle (rejected or dead later). Their records are kept for it.
RETRYABLE_BY_ID_STATUSES = RETRYABLE_STATUSES | {LeadStatus.DUPLICATE}


@dataclass(frozen=True)
class LeadEvent:
    """One transition of a lead: when, into which status, and why (never personal data)."""

    at: float
    status: LeadStatus
    detail: str = ""


# How long an idempotency key returns its lead, unless the admission says otherwise.
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class NewLead:
    """A lead accepted at intake, before it is written to the store.

    `idempotency_key` makes a repeat within `idempotency_ttl_seconds` return this lead instead of a new
    one. With `person_memory_seconds`, the phone is remembered that long; with
    `duplicate_window_seconds`, a phone seen within that window makes the lead a `duplicate`.
    A `fetching` lead has no record yet (an empty `record`); it is stored without one.
    An `unnormalized` lead's `record` is the submission as received, which normalization refused: it is
    kept (sealed) for a person to follow up, apart from the record field, so it is never sent or retried.
    """

    id: str
    source: str
    record: dict[str, Any]
    external_id: str
    phone_masked: str
    status: LeadStatus = LeadStatus.QUEUED
    warnings: tuple[str, ...] = ()
    idempotency_key: str | None = None
    idempotency_ttl_seconds: int = IDEMPOTENCY_TTL_SECONDS
    # Where the key is unique: its source's keys by default; a wider scope (Meta's leadgen ids) spans sources.
    idempotency_scope: str | None = None
    # Whether a repeat of the key is still a repeat once its lead was purged (Meta's leadgen ids, which Meta may send
    # after leads are deleted); otherwise a key left naming a purged lead is taken over by the new one.
    idempotency_outlives_lead: bool = False
    # A keyed hash of the submission its key was sent with ("" for none): a repeat of the key with another
    # submission is told apart from a repeat of the request.
    request_digest: str = ""
    person: str | None = None
    person_memory_seconds: int = 0
    duplicate_window_seconds: int = 0
    detail: str = ""
    unnormalized: bool = False
    # Further non-personal fields kept on the stored lead, e.g. the Meta ids a `fetching` lead is retrieved by.
    extra_fields: dict[str, str] = field(default_factory=dict)

    @property
    def kept_warnings(self) -> tuple[str, ...]:
        """The warnings kept with the lead and shown to operators: `warnings` with no custom field's key."""
        return tuple(warning.kept if isinstance(warning, CustomFieldWarning) else warning for warning in self.warnings)


class CustomFieldWarning(str):
    """A warning about one custom field, naming it by its key for the submitter, who sent it.

    A key is submitted text like any value, and may hold personal data (a form that names a field after
    what was typed): `kept`, the text kept with the lead for operators, names no key.
    """

    kept: str
    _parts: tuple[str, str]

    def __new__(cls, key: str, message: str) -> CustomFieldWarning:
        warning = super().__new__(cls, f"customFields.{key}: {message}")
        warning.kept = f"customFields: {message}"
        warning._parts = (key, message)
        return warning

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        """Copies and pickles are built from the key and message, so they keep `kept` too."""
        return self._parts


@dataclass(frozen=True)
class Lead:
    """A lead as the store knows it; `record` is decrypted only where delivery needs it."""

    id: str
    source: str
    status: LeadStatus
    received_at: float
    updated_at: float
    attempts: int = 0
    external_id: str = ""
    phone_masked: str = ""
    next_attempt_at: float | None = None
    batch_id: str | None = None
    delivered_at: float | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    events: tuple[LeadEvent, ...] = field(default_factory=tuple)


def mask_phone(phone: str) -> str:
    """`+12125550142` -> `+1******0142`: enough for an operator to match, not to call."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 4:
        return "*" * len(digits)
    shown = digits[-4:]
    if phone.startswith("+") and len(digits) == 11:
        return "+" + digits[0] + "*" * (len(digits) - 5) + shown
    return "*" * (len(digits) - 4) + shown
