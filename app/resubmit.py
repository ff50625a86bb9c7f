"""A second normalization of a submission that was refused (a Google lead at intake, a Meta lead at retrieval).

Such a lead is held `rejected` with its submission kept sealed, apart from any careCycle record, so no retry can
send it as it came. Once an operator has fixed the cause on the relay's side (most often a source's
`field_map`), retrying the lead normalizes the kept submission again under the source's current settings; when
that now makes a careCycle record, the record is stored and the lead can be re-queued like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from app.crypto import RecordCipher, RecordDecryptionError
from app.intake import Intake
from app.schemas.fields import field_messages
from app.schemas.google import load_google_lead
from app.sources import LeadSource, SourceKind, SourceRegistry, UnknownSourceError
from app.store import Store

NO_SUBMISSION = "the lead has no careCycle record to send, and no refused submission to normalize again"


class Resubmitter:
    """Turns a lead's kept submission into its careCycle record under its source's current settings."""

    def __init__(self, store: Store, cipher: RecordCipher, sources: SourceRegistry, intake: Intake) -> None:
        self._store = store
        self._cipher = cipher
        self._sources = sources
        self._intake = intake

    def resubmit(self, lead_id: str) -> str | None:
        """Normalize the lead's kept submission again; None when it now has a careCycle record (ready to be
        re-queued), else why not: no submission kept, its source gone, or what normalization still refuses."""
        kept = self._store.retries.refused_submission(lead_id)
        if kept is None:
            return NO_SUBMISSION
        try:
            source = self._sources.by_slug(kept.source)
        except UnknownSourceError:
            return f"source {kept.source!r} is no longer configured"
        try:
            submission = self._cipher.open(kept.sealed)
        except RecordDecryptionError:
            return "the kept submission cannot be decrypted with the configured LEADRELAY_ENCRYPTION_KEY keys"
        try:
            payload, warnings = _payload(source, submission)
            normalized = self._intake.normalize(source, payload)
        except ValidationError as exc:
            messages: Mapping[str, Any] = exc.normalized_messages()  # type: ignore[no-untyped-call]
            return "the submission still fails normalization: " + "; ".join(field_messages(messages))
        lead = self._intake.new_lead(source, normalized.record, (*warnings, *normalized.warnings), lead_id=lead_id)
        if not self._store.retries.adopt_record(lead, self._cipher.seal(lead.record)):
            return "the lead changed meanwhile: retry it again"
        return None


def _payload(source: LeadSource, submission: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What normalization takes: a Google lead was kept as its webhook body, so that the source's current
    `field_map` applies to its columns; any other kind as the submission normalization was given."""
    if source.kind is SourceKind.GOOGLE:
        loaded = load_google_lead(submission, source.field_map)
        return loaded.submission, loaded.warnings
    return submission, ()
