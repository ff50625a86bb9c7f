"""Factories: a test spells out only the fields it is about."""

from __future__ import annotations

import itertools
from typing import Any

from app.models import NewLead, mask_phone
from app.sources import LeadSource, SourceKind

_numbers = itertools.count(1)


def make_phone(n: int | None = None) -> str:
    """A valid, distinct NANP number (+1 212 2xx xxxx) per call."""
    n = next(_numbers) if n is None else n
    return f"+1212{2000000 + n % 8000000:07d}"


def make_submission(**overrides: Any) -> dict[str, Any]:
    """An inbound API lead in careCycle spelling."""
    submission: dict[str, Any] = {
        "phoneNumber": make_phone(),
        "firstName": "Jane",
        "lastName": "Example",
        "email": "jane.example@example.com",
        "postalCode": "10001",
    }
    submission.update(overrides)
    return {k: v for k, v in submission.items() if v is not None}


def make_record(**overrides: Any) -> dict[str, Any]:
    """A valid careCycle record."""
    record: dict[str, Any] = {"phoneNumber": make_phone(), "firstName": "Jane", "postalCode": "10001"}
    record.update(overrides)
    return record


def make_lead(**overrides: Any) -> NewLead:
    """A lead ready to be stored."""
    lead_id = overrides.pop("id", f"lead{next(_numbers):06d}")
    record = overrides.pop("record", None) or make_record(externalId=overrides.get("external_id", lead_id))
    values: dict[str, Any] = {
        "id": lead_id,
        "source": "partner",
        "record": record,
        "external_id": record.get("externalId", lead_id),
        "phone_masked": mask_phone(record["phoneNumber"]),
    }
    values.update(overrides)
    return NewLead(**values)


def make_source(**overrides: Any) -> LeadSource:
    """A configured source."""
    values: dict[str, Any] = {"slug": "partner", "kind": SourceKind.API}
    values.update(overrides)
    return LeadSource(**values)
