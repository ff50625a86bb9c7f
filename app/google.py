"""Google Ads lead form intake: the webhook key, `lead_id` idempotency, test leads, and permanently bad leads.

A lead whose required values are unusable (no valid phone; neither a ZIP nor a timezone) is stored as
`rejected`, with the reason in its events, and Google gets 200. Why not a 4xx: Google would not retry a
4xx either (reference §5), but then the lead would exist nowhere an operator can see it; stored as
`rejected` it is counted in `/v1/stats`, listed with its reason in the status API and dashboard, kept
(encrypted) for a person to follow up or for a retry to normalize again once the source's settings are
fixed (`app.resubmit`), and a repeated delivery of the same `lead_id` finds it. A 200
also keeps one person's typo from making the Google Ads UI report the whole integration as broken.
An `is_test` lead its source does not deliver is kept as `test` even when its values cannot be normalized:
Google's "Send test data" puts `dummy_value` in every column, and a test that reached the relay is no failure
for anyone to follow up.
Only a body that cannot be a lead at all (not JSON, no `lead_id`, no `user_column_data` list) is refused
(400/422): there is nothing to store and nothing Google could fix by sending it again. One answer that cannot
be read costs only itself (`app.schemas.google`).

Errors (answered by `app.errors`):

    GoogleKeyError              403: the body's `google_key` is not the source's key
    └── GoogleKeyMissingError   401: the body carries no `google_key` at all
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from app.intake import AcceptedLead, Admission, Intake
from app.metrics import record_intake
from app.models import LeadStatus
from app.schemas.google import SENSITIVE_COLUMNS, GoogleLead, load_google_lead
from app.sources import LeadSource

logger = logging.getLogger(__name__)

# Google's published test samples spell it with a capital G (reportedly a documentation typo).
GOOGLE_KEY_FIELDS = ("google_key", "Google_key")


class GoogleKeyError(Exception):
    """The body's `google_key` is not the source's key."""


class GoogleKeyMissingError(GoogleKeyError):
    """The body carries no `google_key` at all."""


def verify_google_key(source: LeadSource, body: Mapping[str, Any]) -> None:
    """Compare the body's key with the source's secret in constant time; raises `GoogleKeyError`."""
    presented = next((body[name] for name in GOOGLE_KEY_FIELDS if body.get(name) not in (None, "")), None)
    if presented is None:
        raise GoogleKeyMissingError("google_key missing")
    expected_keys = [secret.encode() for secret in source.secrets] or [b""]
    given = str(presented).encode("utf-8", "surrogatepass")
    # Every configured key is compared (and one even without any), so every refusal takes the same path.
    matches = [hmac.compare_digest(given, expected) for expected in expected_keys]
    if not any(matches) or expected_keys == [b""]:
        raise GoogleKeyError("google_key not recognised")


def _kept_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook body as kept for a lead normalization refused: without its key, and without the national id
    numbers the relay never forwards."""
    kept = {name: value for name, value in body.items() if name not in GOOGLE_KEY_FIELDS}
    columns = kept.get("user_column_data")
    if isinstance(columns, list):
        kept["user_column_data"] = [column for column in columns if not _is_sensitive(column)]
    return kept


def _is_sensitive(column: Any) -> bool:
    return isinstance(column, Mapping) and str(column.get("column_id") or "").strip() in SENSITIVE_COLUMNS


def _verified_lead(source: LeadSource, body: Mapping[str, Any]) -> GoogleLead:
    """The body's lead once its key is verified. A refusal is counted and logged (by source, never with the key):
    Google does not send a refused lead again, so it is the only trace the relay keeps of that lead."""
    try:
        verify_google_key(source, body)
    except GoogleKeyError as exc:
        note_refusal(source, "unauthorized", str(exc))
        raise
    try:
        return load_google_lead(body, source.field_map)
    except ValidationError as exc:
        # By the names of Google's own fields at fault (unknown ones are ignored, so none is the sender's text).
        fields = ", ".join(sorted(str(name) for name in exc.normalized_messages()))  # type: ignore[no-untyped-call]
        note_refusal(source, "invalid", f"expected a valid {fields}")
        raise


def note_refusal(source: LeadSource, outcome: str, reason: str) -> None:
    """Count and log a delivery refused with a 4xx, by source (never a value): Google does not send it again."""
    record_intake(source.slug, outcome)
    logger.warning("google delivery refused: %s", reason, extra={"source": source.slug})


def accept_google_lead(intake: Intake, source: LeadSource, body: Mapping[str, Any]) -> AcceptedLead:
    """Verify, load and store one webhook lead; raises `GoogleKeyError` or `ValidationError` (no usable lead).

    A repeated `lead_id` returns the original lead. `is_test` leads are kept as `test`, whether or not their
    values normalize, unless the source delivers test leads.
    """
    lead = _verified_lead(source, body)
    held_as_test = lead.is_test and not source.deliver_test_leads
    admission = Admission(
        idempotency_key=f"google:{lead.lead_id}",
        status=LeadStatus.TEST if held_as_test else LeadStatus.QUEUED,
        detail=f"Google test lead from {source.slug}" if lead.is_test else "",
        hold_invalid=True,
        # Kept as the webhook body, so a retry after a field_map fix maps its columns anew.
        refused_submission=_kept_body(body),
        warnings=lead.warnings,
    )
    [result] = intake.accept(source, [lead.submission], admission)
    if not isinstance(result, AcceptedLead):
        raise AssertionError("an invalid Google lead is held (as rejected, or test), not refused")
    return result
