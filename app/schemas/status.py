"""Responses of the status API: what may leave about a lead (masked phone and ids, no personal data)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields

from app.models import Lead, LeadStatus


def iso_time(epoch: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC timestamp with milliseconds."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lead_status_field(**kwargs: Any) -> fields.String:
    """A lead's status as an answer gives it (its value), documented with every status it may hold (and null, when
    `allow_none`: OpenAPI 3.0 lists it in the enum of a nullable field)."""
    values: list[str | None] = [status.value for status in LeadStatus]
    metadata = {"enum": values + ([None] if kwargs.get("allow_none") else []), **kwargs.pop("metadata", {})}
    return fields.String(metadata=metadata, **kwargs)


class LeadEventSchema(Schema):
    at = fields.String()
    status = lead_status_field()
    detail = fields.String()


class LeadSummarySchema(Schema):
    """A lead in `GET /v1/leads`: its status without the events."""

    id = fields.String()
    source = fields.String()
    status = lead_status_field()
    receivedAt = fields.String(allow_none=True)
    updatedAt = fields.String(allow_none=True)
    attempts = fields.Integer()
    nextAttemptAt = fields.String(allow_none=True)
    batchId = fields.String(
        allow_none=True,
        metadata={"description": "the batch that last took the lead for an upload (kept once that batch has ended)"},
    )
    deliveredAt = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    warnings = fields.List(fields.String())
    externalId = fields.String()
    phone = fields.String(metadata={"description": "masked, e.g. +1******0123"})


class LeadStatusSchema(LeadSummarySchema):
    """`GET /v1/leads/<id>`."""

    events = fields.List(fields.Nested(LeadEventSchema))


def lead_status(lead: Lead, *, with_events: bool = True) -> dict[str, Any]:
    """A lead as the status API shows it (the lead list leaves the events out)."""
    body: dict[str, Any] = {
        "id": lead.id,
        "source": lead.source,
        "status": lead.status.value,
        "receivedAt": iso_time(lead.received_at),
        "updatedAt": iso_time(lead.updated_at),
        "attempts": lead.attempts,
        "nextAttemptAt": iso_time(lead.next_attempt_at),
        "batchId": lead.batch_id,
        "deliveredAt": iso_time(lead.delivered_at),
        "error": lead.error,
        "warnings": list(lead.warnings),
        "externalId": lead.external_id,
        "phone": lead.phone_masked,
    }
    if with_events:
        body["events"] = [{"at": iso_time(e.at), "status": e.status.value, "detail": e.detail} for e in lead.events]
    schema = LeadStatusSchema() if with_events else LeadSummarySchema()
    dumped: dict[str, Any] = schema.dump(body)
    return dumped
