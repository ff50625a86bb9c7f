"""A second normalization of a submission that was refused (a Google lead at intake, a Meta lead at retrieval).

Such a lead is held `rejected` with its submission kept sealed, apart from any careCycle record, so no retry can
send it as it came. Once an operator has fixed the cause on the relay's side (most often a source's
`field_map`), retrying the lead normalizes the kept submission again under the source's current settings; when
that now makes a careCycle record, the record is stored and the lead can be re-queued like any other: unless it
is a Google test lead its source does not deliver, or the same person arrived within the source's duplicate
window (the lead is then `duplicate`, as it would have been at intake).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from app.clock import Clock
from app.crypto import RecordCipher, RecordDecryptionError
from app.intake import Intake
from app.models import LeadStatus
from app.ops import Refusal
from app.schemas.fields import field_reason
from app.schemas.google import load_google_lead
from app.sources import LeadSource, SourceKind, SourceRegistry, UnknownSourceError
from app.store import Store

NO_SUBMISSION = Refusal("the lead has no careCycle record to send, and no refused submission to normalize again")


@dataclass(frozen=True)
class Normalizing:
    """What a second normalization takes: the cipher of the kept submission, the sources, and intake."""

    cipher: RecordCipher
    sources: SourceRegistry
    intake: Intake


class Resubmitter:
    """Turns a lead's kept submission into its careCycle record under its source's current settings.

    `normalizing` is asked for only once a lead holds a kept submission, so a caller may read the key and the
    sources file lazily (the CLI); it raises `ConfigError` when they cannot be had.
    """

    def __init__(self, store: Store, clock: Clock, normalizing: Callable[[], Normalizing]) -> None:
        self._store = store
        self._clock = clock
        self._normalizing = normalizing

    def resubmit(self, lead_id: str) -> Refusal | None:
        """Normalize the lead's kept submission again; None when it now has a careCycle record (ready to be
        re-queued), else why not: no submission kept, its source gone, or what normalization still refuses."""
        kept = self._store.retries.refused_submission(lead_id)
        if kept is None:
            return NO_SUBMISSION
        tools = self._normalizing()
        try:
            source = tools.sources.by_slug(kept.source)
        except UnknownSourceError:
            return Refusal(f"source {kept.source!r} is no longer configured")
        try:
            submission = tools.cipher.open(kept.sealed)
        except RecordDecryptionError:
            return Refusal("the kept submission cannot be decrypted with the configured LEADRELAY_ENCRYPTION_KEY keys")
        try:
            payload = _payload(source, submission)
            normalized = tools.intake.normalize(source, payload.submission)
        except ValidationError as exc:
            return _still_refused(exc.normalized_messages())  # type: ignore[no-untyped-call]
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # kept data of a shape no schema expects
            return Refusal(f"the kept submission cannot be normalized ({type(exc).__name__})")
        if payload.is_test and not source.deliver_test_leads:
            return Refusal(f"a Google test lead: source {source.slug!r} does not deliver test leads")
        warnings = (*payload.warnings, *normalized.warnings)
        lead = tools.intake.new_lead(source, normalized.record, warnings, lead_id=lead_id)
        adoption = self._store.retries.adopt_record(lead, tools.cipher.seal(lead.record), self._clock.now())
        if adoption.status is LeadStatus.DUPLICATE:
            return Refusal(f"now kept as duplicate: {adoption.detail}", _NOW_DUPLICATE)
        if adoption.status is None:
            return Refusal("the lead changed meanwhile (another retry took it): see its status")
        return None


_NOW_DUPLICATE = "now kept as duplicate: the same phone came within the window"


def _still_refused(messages: dict[str, Any]) -> Refusal:
    """What normalization still refuses: each field's messages (a retry of the lead alone), or the fields' names
    alone (a bulk retry counts its leads by them: a message of a field nested in another may name a submitted key)."""
    fields = ", ".join(sorted(messages))
    return Refusal(
        "the submission still fails normalization: " + field_reason(messages),
        "the kept submission still fails normalization: " + fields,
    )


@dataclass(frozen=True)
class _Payload:
    submission: dict[str, Any]
    warnings: tuple[str, ...] = ()
    is_test: bool = False


def _payload(source: LeadSource, submission: dict[str, Any]) -> _Payload:
    """What normalization takes: a Google lead kept as its webhook body goes through the Google mapping again,
    so the source's current `field_map` applies to its columns; anything else is taken as kept."""
    if source.kind is SourceKind.GOOGLE and "user_column_data" in submission:
        loaded = load_google_lead(submission, source.field_map)
        return _Payload(loaded.submission, loaded.warnings, loaded.is_test)
    return _Payload(submission)
