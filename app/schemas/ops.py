"""Ops requests and responses: lead list, stats and audit query args, the retry filter, their response bodies."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, post_load, validate

from app.models import RETRYABLE_STATUSES, Lead, LeadStatus
from app.schemas.sources import MAX_SLUG_CHARS, SLUG_CHARS, SLUG_PATTERN
from app.schemas.status import LeadSummarySchema, iso_time, lead_status
from app.store.audit import MAX_AUDIT_ENTRIES, AuditEntry
from app.store.index import Position, Selection

DEFAULT_PAGE_LEADS = 50
MAX_PAGE_LEADS = 200
DEFAULT_AUDIT_ENTRIES = 50
MAX_AUDIT_ENTRIES_PER_PAGE = 1000


# The last second of 9999-12-31 UTC: the latest time that can be shown back as ISO 8601.
_LAST_SECOND = 253_402_300_799
# ISO 8601's basic date, 20260131: as epoch seconds it would be a moment of 1970-1973, before any lead.
_BASIC_DATE = re.compile(r"[0-9]{8}")
# A time whose UTC offset lost its "+": written unencoded in a URL's query, a "+" arrives as a space.
_OFFSET_AFTER_SPACE = re.compile(r"(.*[Tt ].*[0-9]) ([0-9]{2}(?::?[0-9]{2})?)")


class Instant(fields.Field[float]):
    """A point in time given as ISO 8601 (UTC unless it says otherwise) or epoch seconds; loads as epoch.

    Eight digits are ISO 8601's basic date when they are one (20260131: its midnight UTC), and a time followed by a
    space and an offset (`2026-01-31T09:30:00 05:30`) is read with the "+" a URL's query turned into that space.
    """

    default_error_messages = {
        **dict.fromkeys(
            ("required", "null", "validator_failed", "invalid"),
            "expected an ISO 8601 time (2026-01-31T09:30:00Z) or epoch seconds",
        ),
        "range": "expected a time from 1970-01-01 to 9999-12-31 (UTC)",
        "milliseconds": "expected epoch seconds, not milliseconds: a time from 1970-01-01 to 9999-12-31 (UTC)",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        text = str(value).strip()
        moment = _basic_date(text) if isinstance(value, str) else None
        epoch = _number(text) if moment is None else moment.timestamp()
        if epoch is None:
            moment = _iso_time(text)
            if moment is None:
                raise self.make_error("invalid")
            epoch = moment.timestamp()
        if not math.isfinite(epoch):
            raise self.make_error("invalid")
        if not 0 <= epoch <= _LAST_SECOND:
            in_milliseconds = moment is None and 0 <= epoch / 1000 <= _LAST_SECOND
            raise self.make_error("milliseconds" if in_milliseconds else "range")
        return epoch


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _basic_date(text: str) -> datetime | None:
    """The midnight (UTC) of an ISO 8601 basic date (20260131); None for other text, or eight digits naming no date."""
    if not _BASIC_DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _iso_time(text: str) -> datetime | None:
    """An ISO 8601 time, UTC when it names no offset; None for other text."""
    lost_plus = _OFFSET_AFTER_SPACE.fullmatch(text)
    for candidate in (text, f"{lost_plus[1]}+{lost_plus[2]}" if lost_plus else None):
        try:
            moment = datetime.fromisoformat(candidate) if candidate else None
        except ValueError:
            continue
        if moment is not None:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


class Cursor(fields.Field[Position]):
    """The opaque `cursor` of the lead list: where the previous page ended."""

    default_error_messages = dict.fromkeys(
        ("required", "null", "validator_failed", "invalid"), "expected a nextCursor value returned by this endpoint"
    )

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Position:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            score, _, lead_id = raw.partition(":")
            position = Position(float(score), lead_id)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise self.make_error("invalid") from None
        if not lead_id or not math.isfinite(position.received_at):
            raise self.make_error("invalid")
        return position


def encode_cursor(position: Position) -> str:
    """A page's end as the opaque string clients send back."""
    raw = f"{position.received_at!r}:{position.lead_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_SINCE_READ = "UTC unless it names an offset; eight digits are a basic date, 20260131 its midnight UTC"
_SINCE_DOC = {
    "type": "string",
    "description": f"only leads received at or after: ISO 8601 time ({_SINCE_READ}) or epoch seconds",
}
# In a JSON body, epoch seconds may come as a number too.
_SINCE_BODY_DOC = {
    "oneOf": [{"type": "string"}, {"type": "number", "minimum": 0}],
    "description": f"only leads received at or after: ISO 8601 time ({_SINCE_READ}), or epoch seconds (a number or"
    " its text)",
}
_SOURCE_EXPECTED = "expected a source slug: 1 to 63 lowercase letters, digits, - and _, starting with a letter or digit"


def _expecting(expected: str, *kinds: str) -> dict[str, str | list[Any] | dict[Any, Any]]:
    """A field's error messages, each saying what it expects: marshmallow's own ("Not a valid integer.", "Field may
    not be null.") say only what went wrong, and would reach ops clients and the CLI as they are."""
    return {kind: expected for kind in ("required", "null", "validator_failed", *kinds)}


def _integer(low: int, high: int, default: int, **kwargs: Any) -> fields.Integer:
    expected = f"expected an integer from {low} to {high}"
    return fields.Integer(
        load_default=default,
        validate=validate.Range(min=low, max=high, error=expected),
        error_messages=_expecting(expected, "invalid", "too_large"),
        **kwargs,
    )


def _source(description: str | None = None) -> fields.String:
    # What a source's slug may be (the sources file's rule): a filter no slug could match is refused saying so. A
    # control character (a trailing newline too) or a lone surrogate (a JSON "\ud800", a shell argument's byte that
    # is no UTF-8) is none, and no text Redis could be asked for either.
    described = {} if description is None else {"description": description}
    return fields.String(
        validate=validate.Regexp(SLUG_PATTERN, error=_SOURCE_EXPECTED),
        # The slug pattern, anchored as JSON Schema reads it.
        metadata={"minLength": 1, "maxLength": MAX_SLUG_CHARS, "pattern": f"^{SLUG_CHARS}$", **described},
        error_messages=_expecting(_SOURCE_EXPECTED, "invalid", "invalid_utf8"),
    )


class NamedArgsSchema(Schema):
    """Query args or a filter whose refusal of an unknown name lists the names there are (marshmallow says only
    "Unknown field.", which leaves a typo's author to guess)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        *others, last = self.load_fields
        names = f"{', '.join(others)} or {last}" if others else last
        self.error_messages = {
            **self.error_messages,
            "unknown": f"unknown: expected only {names}",
            "type": f"expected an object of {names}",
        }


@dataclass(frozen=True)
class LeadListArgs:
    """`GET /v1/leads` as the operator asked for it."""

    selection: Selection
    after: Position | None
    limit: int


class LeadListArgsSchema(NamedArgsSchema):
    """Query args of `GET /v1/leads`; an unknown arg is an error (a typo must not widen a filter)."""

    status = fields.Enum(
        LeadStatus,
        by_value=True,
        error_messages=_expecting(f"expected one of: {', '.join(s.value for s in LeadStatus)}", "unknown"),
    )
    source = _source()
    since = Instant(metadata=_SINCE_DOC)
    limit = _integer(1, MAX_PAGE_LEADS, DEFAULT_PAGE_LEADS)
    cursor = Cursor(metadata={"type": "string", "description": "the `nextCursor` of the previous page"})

    @post_load
    def to_args(self, data: dict[str, Any], **kwargs: Any) -> LeadListArgs:
        selection = Selection(data.get("status"), data.get("source"), data.get("since"))
        return LeadListArgs(selection, data.get("cursor"), data["limit"])


_RETRYABLE = "expected one of: dead, rejected"


class RetryFilterSchema(NamedArgsSchema):
    """Body of `POST /v1/leads/retry` (and the flags of `leadrelay retry`): which failed leads to re-queue."""

    status = fields.Enum(
        LeadStatus,
        by_value=True,
        required=True,
        validate=validate.OneOf(sorted(RETRYABLE_STATUSES), error=_RETRYABLE),
        error_messages={
            **_expecting(_RETRYABLE, "unknown"),
            "required": f"missing: {_RETRYABLE}",
            "null": f"missing: {_RETRYABLE}",
        },
    )
    source = _source()
    since = Instant(metadata=_SINCE_BODY_DOC)

    @post_load
    def to_selection(self, data: dict[str, Any], **kwargs: Any) -> Selection:
        return Selection(data["status"], data.get("source"), data.get("since"))


class StatsArgsSchema(NamedArgsSchema):
    """Query args of `GET /v1/stats` (and the flag of `leadrelay stats`): the source to count leads by status of."""

    source = _source(
        "narrow `counts` (leads by status) to this source: a configured source's slug, or one a lead came from;"
        " every other number stays relay-wide"
    )


class AuditArgsSchema(NamedArgsSchema):
    """Query args of `GET /v1/audit`."""

    limit = _integer(1, MAX_AUDIT_ENTRIES_PER_PAGE, DEFAULT_AUDIT_ENTRIES)
    offset = _integer(
        0,
        MAX_AUDIT_ENTRIES - 1,
        0,
        metadata={
            "description": "entries to skip, newest first: the next page starts at offset + limit (an action "
            "recorded meanwhile moves the rest one later, so an entry may show twice, and none is missed)"
        },
    )


class LeadPageSchema(Schema):
    """`GET /v1/leads`: leads as the status API shows them (masked phone and ids, no events)."""

    leads = fields.List(fields.Nested(LeadSummarySchema), required=True)
    nextCursor = fields.String(
        allow_none=True, required=True, metadata={"description": "pass as `cursor` for the next page; null: last"}
    )


class RequeuedSchema(Schema):
    """`POST /v1/leads/retry` (and `leadrelay retry`): how many leads were re-queued, and how many matching leads
    were left as they were, counted by why."""

    requeued = fields.Integer(required=True, metadata={"description": "matching leads queued again"})
    skipped = fields.Integer(
        required=True, metadata={"description": "matching leads left as they were (the sum of `skippedReasons`)"}
    )
    skippedReasons = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "how many leads were left for each reason: what still refuses them, by the names of "
            "the fields at fault, never a value or a lead's id (a lead's own status says more); empty when none",
            "example": {"the kept submission still fails normalization: phoneNumber": 2},
        },
    )


class AuditEntrySchema(Schema):
    """One operator action: when, what, by which token's name (or `cli:<user>`), on what, how many leads."""

    at = fields.String(required=True)
    action = fields.String(required=True, metadata={"example": "retry_leads"})
    actor = fields.String(required=True, metadata={"example": "alice"})
    leadId = fields.String(allow_none=True)
    filter = fields.Dict(allow_none=True)
    count = fields.Integer(required=True)


class AuditTrailSchema(Schema):
    """`GET /v1/audit`: the newest operator actions first."""

    entries = fields.List(fields.Nested(AuditEntrySchema), required=True)


def lead_page_body(leads: Sequence[Lead], next_position: Position | None) -> dict[str, Any]:
    """`GET /v1/leads`: each lead as the status API shows it, without events, and the next cursor."""
    body = {
        "leads": [lead_status(lead, with_events=False) for lead in leads],
        "nextCursor": None if next_position is None else encode_cursor(next_position),
    }
    dumped: dict[str, Any] = LeadPageSchema().dump(body)
    return dumped


def requeued_body(requeued: int, skipped_reasons: Mapping[str, int]) -> dict[str, Any]:
    """`POST /v1/leads/retry` and `leadrelay retry`: the leads re-queued, and those left by why (the most first)."""
    reasons = dict(sorted(skipped_reasons.items(), key=lambda item: (-item[1], item[0])))
    body = {"requeued": requeued, "skipped": sum(reasons.values()), "skippedReasons": reasons}
    dumped: dict[str, Any] = RequeuedSchema().dump(body)
    return dumped


def audit_body(entries: Sequence[AuditEntry]) -> dict[str, Any]:
    """`GET /v1/audit`: the newest entries first."""
    dumped: dict[str, Any] = AuditTrailSchema().dump({"entries": [_audit_entry(entry) for entry in entries]})
    return dumped


def _audit_entry(entry: AuditEntry) -> dict[str, Any]:
    selection = dict(entry.filter)
    if isinstance(selection.get("since"), int | float):
        selection["since"] = iso_time(float(selection["since"]))
    return {
        "at": iso_time(entry.at),
        "action": entry.action,
        "actor": entry.actor,
        "leadId": entry.lead_id,
        "filter": selection or None,
        "count": entry.count,
    }
