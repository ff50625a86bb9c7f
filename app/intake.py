"""Accepting leads: normalize, seal, store in one round trip, wake delivery. What intake views call."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from marshmallow import ValidationError
from redis.exceptions import RedisError

from app.clock import Clock
from app.config import Settings
from app.crypto import RecordCipher, fingerprint_of
from app.logs import note_lead_ids
from app.metrics import record_admitted, record_intake
from app.models import IDEMPOTENCY_TTL_SECONDS, LeadStatus, NewLead, mask_phone
from app.schemas.fields import field_reason
from app.schemas.leads import NormalizedLead, normalize_submission, submitted_phone
from app.sources import LeadSource, SourceRegistry
from app.store import Store
from app.store.leads import Admitted
from app.store.throttle import RateLimitedError, WindowGate

logger = logging.getLogger(__name__)

MAX_BULK_LEADS = 200
IDEMPOTENCY_KEY_FIELD = "Idempotency-Key"  # the header a partner names the lead with, as refusals name it
_ITEM_SEPARATOR = "\x1f"  # ASCII unit separator
LANES_BUSY_MEMORY_SECONDS = 0.25


@dataclass(frozen=True)
class Admission:
    """How submissions are admitted, beyond what their source says.

    `status` keeps a lead out of delivery (`test`, `spam`); `dedupe_by_phone_seconds` makes a second
    submission of the same phone to the same source within that window return the first lead; a `gate`
    counts a single submission against rate limits as it is stored, or alone when it is refused
    (`RateLimitedError` when one is used up); `hold_invalid` stores a submission that fails normalization as a
    `rejected` lead, with the reason in its events, instead of refusing it, keeping `refused_submission`
    (default: the submission itself) sealed for a later retry to normalize again; with `status` test it is held
    as `test` instead, as any test lead kept out of delivery (placeholder answers are no failure to follow up).
    `warnings` are the submission's own from before normalization (what reading a webhook body dropped): they
    are kept with the lead ahead of normalization's, under the same rule (no custom field's key is kept), and
    are answered with it. With `key_binds_body`, the idempotency key names one submission: a repeat of the key
    with another one is answered with the first lead, as any repeat, but warned (`Idempotency-Key: ...`) and logged,
    since the partner reused a key and this submission was not taken.
    """

    idempotency_key: str | None = None
    key_binds_body: bool = False
    status: LeadStatus = LeadStatus.QUEUED
    detail: str = ""
    dedupe_by_phone_seconds: int = 0
    gate: WindowGate | None = None
    hold_invalid: bool = False
    refused_submission: Mapping[str, Any] | None = None
    # Items refused before they were read as leads (a bulk item giving a name twice), by index: what `fields` says.
    refused_items: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AcceptedLead:
    """A lead the relay now holds; `repeated` when an idempotency key named an earlier one. `warnings` are the
    submission's own (what the admission's reading and normalization dropped from it), repeated or not."""

    id: str
    status: LeadStatus
    warnings: tuple[str, ...] = ()
    repeated: bool = False
    # A repeat of an idempotency key that was first sent with another submission: this one was not taken.
    key_reused: bool = False


@dataclass(frozen=True)
class InvalidLead:
    """A submission refused at intake: which fields, and what was expected of them."""

    index: int
    fields: Mapping[str, Any]


class Intake:
    """Turns submissions into stored, queued leads."""

    def __init__(
        self,
        store: Store,
        cipher: RecordCipher,
        clock: Clock,
        wake_delivery: Callable[[], bool],
        *,
        person_memory_seconds: int = 0,
        idempotency_ttl_seconds: int = IDEMPOTENCY_TTL_SECONDS,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._person_memory_seconds = person_memory_seconds
        self._idempotency_ttl_seconds = idempotency_ttl_seconds
        self._lanes_busy_at = -LANES_BUSY_MEMORY_SECONDS
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._wake = wake_delivery
        self._new_id = new_id
        self._fingerprint_secret: bytes | None = None

    @classmethod
    def configured(
        cls,
        store: Store,
        cipher: RecordCipher,
        clock: Clock,
        wake_delivery: Callable[[], bool],
        settings: Settings,
        sources: SourceRegistry,
    ) -> Intake:
        """Intake as the settings and sources file set it up (the web tier's, and the workers' for Meta)."""
        return cls(
            store,
            cipher,
            clock,
            wake_delivery,
            person_memory_seconds=sources.person_memory_seconds,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds(),
        )

    def accept(
        self, source: LeadSource, payloads: Sequence[Mapping[str, Any] | Any], admission: Admission | None = None
    ) -> list[AcceptedLead | InvalidLead]:
        """Normalize and store each payload; one result per payload, in order (a payload that is no mapping,
        such as a bulk item that is not a JSON object, is invalid)."""
        admission = admission or Admission()
        results: list[AcceptedLead | InvalidLead | None] = [None] * len(payloads)
        new_leads: list[tuple[int, NewLead]] = []
        for index, payload in enumerate(payloads):
            if not isinstance(payload, Mapping):
                results[index] = InvalidLead(index, {"lead": ["expected a JSON object: one lead's fields"]})
                continue
            if index in admission.refused_items:
                results[index] = InvalidLead(index, admission.refused_items[index])
                continue
            key = _item_key(admission.idempotency_key, index, len(payloads))
            try:
                normalized = self.normalize(source, payload)
            except ValidationError as exc:
                invalid = InvalidLead(index, exc.normalized_messages())  # type: ignore[no-untyped-call]
                if admission.hold_invalid:
                    kept = admission.refused_submission or payload
                    new_leads.append((index, self._refused_lead(source, payload, kept, invalid, admission, key)))
                else:
                    results[index] = invalid
                continue
            warnings = (*admission.warnings, *normalized.warnings)
            lead = self.new_lead(source, normalized.record, warnings, admission, key=key)
            if key is not None and admission.key_binds_body:
                lead = replace(lead, request_digest=self.fingerprint_of(_submission_text(payload)))
            new_leads.append((index, lead))
        try:
            if not new_leads and admission.gate is not None:
                self._store.throttle.hit(admission.gate, self._clock.now())  # a refused submission counts too
            stored = self.store_leads([lead for _, lead in new_leads], admission.gate)
        except RateLimitedError:
            record_intake(source.slug, "throttled", len(payloads))
            raise
        for (index, _), accepted in zip(new_leads, stored, strict=True):
            results[index] = _key_reused(accepted) if accepted.key_reused else accepted
        _log_reused_keys(source, [a for a in stored if a.key_reused])
        record_intake(source.slug, "invalid", sum(isinstance(r, InvalidLead) for r in results))
        return [r for r in results if r is not None]

    def _refused_lead(
        self,
        source: LeadSource,
        payload: Mapping[str, Any],
        kept: Mapping[str, Any],
        invalid: InvalidLead,
        admission: Admission,
        key: str | None,
    ) -> NewLead:
        """A submission normalization refused, held with the reason: `rejected`, or `test` when the admission
        keeps it out of delivery as a test lead (no error to follow up, nothing to retry). `kept` is sealed for a
        later retry to normalize again; what status shows (the masked phone, if one of its phone values is valid,
        whichever name or mapped column gave it; the external id) comes from `payload`."""
        reason = field_reason(invalid.fields)
        error: dict[str, str] = {}
        if admission.status is LeadStatus.TEST:
            held = Admission(status=LeadStatus.TEST, detail=f"{admission.detail}; not normalizable: {reason}")
        else:
            held = Admission(status=LeadStatus.REJECTED, detail=f"rejected at intake: {reason}")
            error = {"error": reason}
        shown = {**payload, "phoneNumber": submitted_phone(payload, source.field_map) or ""}
        lead = self.new_lead(source, shown, admission.warnings, held, key=key)
        return replace(lead, record=dict(kept), unnormalized=True, extra_fields={**lead.extra_fields, **error})

    def store_leads(self, leads: Sequence[NewLead], gate: WindowGate | None = None) -> list[AcceptedLead]:
        """Seal and store prepared leads in one round trip, then wake delivery if any is queued."""
        if not leads:
            return []
        sealed = [self._cipher.seal(lead.record) for lead in leads]
        admitted = self._store.leads.admit(leads, sealed, self._clock.now(), gate)
        accepted = [
            AcceptedLead(a.id, a.status, lead.warnings, repeated=a.repeated, key_reused=_is_key_reused(lead, a))
            for lead, a in zip(leads, admitted, strict=True)
        ]
        if any(a.status is LeadStatus.QUEUED and not a.repeated for a in accepted):
            self._wake_unless_busy()
        for lead, a in zip(leads, accepted, strict=True):
            record_admitted(lead.source, a.status, a.repeated)
        fresh = [a.id for a in accepted if not a.repeated]
        # Named on the request's own log line (one line per request keeps logging cheap under load).
        note_lead_ids(fresh)
        logger.debug("accepted %d new leads", len(fresh), extra={"lead_ids": fresh})
        return accepted

    def _wake_unless_busy(self) -> None:
        """Wake delivery, but not again within a moment of finding every lane busy: under load each
        request would otherwise pay a round trip to learn what the last one learned. A lane that goes
        idle meanwhile looks for due work before it stops, and the workers' ticker catches the rest.

        A wake-up that fails once the leads are stored is no failure of the request: the leads are queued in
        the store, which the ticker reads, whereas an error answer would have the client send them again."""
        now = self._clock.now()
        if now - self._lanes_busy_at < LANES_BUSY_MEMORY_SECONDS:
            return
        try:
            woken = self._wake()
        except RedisError as exc:
            logger.warning("delivery was not woken: redis unavailable (%s)", type(exc).__name__)
            return
        self._lanes_busy_at = now if not woken else -LANES_BUSY_MEMORY_SECONDS

    def fingerprint_of(self, value: str) -> str:
        """The keyed hash of a personal value that Redis key names carry instead of the value. The secret is read
        from the store on first need and kept (raises `RedisError`, or `FingerprintSecretError` when no configured
        key opens it), so that nothing is admitted under a fingerprint of another secret."""
        if self._fingerprint_secret is None:
            # Threads of one process may read it at once: they read the same secret.
            self._fingerprint_secret = self._store.fingerprints.secret(self._cipher)
        return fingerprint_of(self._fingerprint_secret, value)

    @staticmethod
    def normalize(source: LeadSource, payload: Mapping[str, Any]) -> NormalizedLead:
        """The careCycle record a payload becomes under a source's settings; raises `ValidationError`."""
        return normalize_submission(
            payload,
            field_map=source.field_map,
            static_custom_fields=source.static_custom_fields,
            kept_custom_keys=source.kept_custom_keys,
            source_id=source.source_id,
            lead_cost=source.lead_cost,
        )

    def new_lead(
        self,
        source: LeadSource,
        record: dict[str, Any],
        warnings: tuple[str, ...],
        admission: Admission | None = None,
        lead_id: str | None = None,
        key: str | None = None,
    ) -> NewLead:
        """A lead ready to store: id, externalId, masked phone, and the duplicate-window settings.

        `key` is the lead's idempotency key, kept in Redis by its fingerprint (a client may well build it from
        a customer's e-mail); without one, an admission that dedupes by phone keys the lead by its phone's
        fingerprint for that window.
        """
        admission = admission or Admission()
        lead_id = lead_id or self._new_id()
        external_id = str(record.get("externalId") or lead_id)
        record = {**record, "externalId": external_id}
        phone = str(record.get("phoneNumber", ""))
        by_phone = key is None and admission.dedupe_by_phone_seconds > 0
        fingerprint = self.fingerprint_of(phone) if by_phone or self._person_memory_seconds else None
        return NewLead(
            id=lead_id,
            source=source.slug,
            record=record,
            external_id=external_id,
            phone_masked=mask_phone(phone),
            warnings=warnings,
            status=admission.status,
            idempotency_key=f"phone:{fingerprint}" if by_phone else key and f"key:{self.fingerprint_of(key)}",
            idempotency_ttl_seconds=admission.dedupe_by_phone_seconds if by_phone else self._idempotency_ttl_seconds,
            person=fingerprint if self._person_memory_seconds else None,
            person_memory_seconds=self._person_memory_seconds,
            duplicate_window_seconds=source.duplicate_window_seconds,
            detail=admission.detail or f"accepted from {source.slug}",
        )


def _submission_text(payload: Mapping[str, Any]) -> str:
    """A submission as one text, whatever the order and spacing of its fields: what its digest is taken of."""
    return "submission:" + json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _is_key_reused(lead: NewLead, admitted: Admitted) -> bool:
    """True when a lead's idempotency key named an earlier lead taken with another submission (a lead stored
    without a digest, before digests were kept, is taken to be this one)."""
    return (
        admitted.repeated
        and bool(lead.request_digest and admitted.request_digest)
        and (lead.request_digest != admitted.request_digest)
    )


def _log_reused_keys(source: LeadSource, reused: Sequence[AcceptedLead]) -> None:
    """One warning line per request for the submissions whose idempotency key named a lead sent with another body
    (a bulk resent under its key with other leads would otherwise write a line per item)."""
    if not reused:
        return
    logger.warning(
        "an Idempotency-Key was sent again with another lead: the first lead is answered, this one not taken"
        " (%d submissions)",
        len(reused),
        extra={"lead_ids": [a.id for a in reused], "source": source.slug},
    )


def _key_reused(accepted: AcceptedLead) -> AcceptedLead:
    """The answer to a submission whose idempotency key names a lead sent with another body: the original lead, as
    for any repeat of the key (never a second lead), warned so that a partner reusing keys learns that this
    submission was not taken. Its own warnings are about a lead not taken, and are left out."""
    reused = (
        f"{IDEMPOTENCY_KEY_FIELD}: names lead {accepted.id}, sent with another body: this submission was not taken"
        " (expected a key of its own for each lead)"
    )
    return replace(accepted, warnings=(reused,))


def _item_key(idempotency_key: str | None, index: int, count: int) -> str | None:
    """The idempotency key of one item: the header's key, suffixed by position in a bulk request after a
    control character, which no key of a single request can hold (see `/v1/leads`), so the two never meet."""
    if idempotency_key is None:
        return None
    return idempotency_key if count == 1 else f"{idempotency_key}{_ITEM_SEPARATOR}{index}"
