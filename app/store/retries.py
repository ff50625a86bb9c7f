"""Operator re-queues: `rejected` and `dead` leads (and, by id, `duplicate` ones) sent back to the ready queue, a
bounded batch per call; and, for a lead whose submission normalization refused, the kept submission and the record
it later becomes."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis

from app.models import LeadStatus, NewLead
from app.store import keys
from app.store.codec import text
from app.store.scripts import Scripts

# Ids per script call: a bulk retry of many thousands of leads never holds Redis for long.
MAX_REQUEUE_BATCH = 500


class RequeueOutcome(enum.StrEnum):
    """What a re-queue did to one lead (spelled as the script returns it)."""

    REQUEUED = "requeued"
    REFETCHING = "refetching"  # a Meta lead without its record: retrieved from the Graph API again
    MISSING = "missing"
    NOT_RETRYABLE = "not_retryable"
    NO_RECORD = "no_record"


@dataclass(frozen=True)
class Requeued:
    """One lead's re-queue: the outcome and the status it had before (None when there is no such lead)."""

    lead_id: str
    outcome: RequeueOutcome
    previous: LeadStatus | None


@dataclass(frozen=True)
class Adoption:
    """What adopting a record did: the lead's status now (`queued`: ready to re-queue; `duplicate`, with why),
    or None when nothing was changed."""

    status: LeadStatus | None
    detail: str = ""


@dataclass(frozen=True)
class RefusedSubmission:
    """The sealed submission kept for a lead normalization refused, and the source it came from."""

    lead_id: str
    source: str
    sealed: str


class RetryStore:
    """Re-queues leads atomically, at most `MAX_REQUEUE_BATCH` per call."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def requeue(self, lead_ids: Sequence[str], now: float, detail: str, *, duplicates: bool = False) -> list[Requeued]:
        """Make each `rejected`/`dead` lead (with `duplicates`, each `duplicate` one too) `queued` and ready now,
        with `detail` as its event (a Meta lead that never got its record from the Graph API: `fetching`, to be
        retrieved again).

        An id that cannot be a lead's is `missing` without being looked up (it must never reach a key name).
        """
        if len(lead_ids) > MAX_REQUEUE_BATCH:
            raise ValueError(f"at most {MAX_REQUEUE_BATCH} leads per call")
        if not all(keys.is_lead_id(lead_id) for lead_id in lead_ids):
            valid = [i for i in lead_ids if keys.is_lead_id(i)]
            found = {r.lead_id: r for r in self.requeue(valid, now, detail, duplicates=duplicates)}
            return [found.get(i) or Requeued(i, RequeueOutcome.MISSING, None) for i in lead_ids]
        if not lead_ids:
            return []
        flat = self._scripts.retry_leads(
            keys=[
                keys.status_counts_key(),
                keys.ready_key(),
                keys.retained_records_key(),
                keys.retained_leads_key(),
                keys.fetching_key(),
            ],
            args=[repr(now), detail, keys.LEAD_KEY_PREFIX, keys.LEAD_EVENTS_SUFFIX, int(duplicates), *lead_ids],
        )
        results = []
        for index, lead_id in enumerate(lead_ids):
            outcome, previous = text(flat[2 * index]) or "", text(flat[2 * index + 1]) or ""
            results.append(Requeued(lead_id, RequeueOutcome(outcome), LeadStatus(previous) if previous else None))
        return results

    def refused_submission(self, lead_id: str) -> RefusedSubmission | None:
        """The submission kept (sealed) for a lead normalization refused, with its source; None without one."""
        if not keys.is_lead_id(lead_id):
            return None
        source, sealed = self._redis.hmget(keys.lead_key(lead_id), ["source", keys.SUBMISSION_FIELD])
        if not sealed:
            return None
        return RefusedSubmission(lead_id, text(source) or "", text(sealed) or "")

    def adopt_record(self, lead: NewLead, sealed_record: str, now: float) -> Adoption:
        """Give a `rejected`/`dead` lead that still holds its refused submission the careCycle record it now
        normalizes to (`lead`: its record's external id, masked phone, warnings and person settings).

        The person is checked against the source's duplicate window as at intake: a repeat makes the lead
        `duplicate`. Nothing changes when the lead no longer holds a submission in a retryable status.
        """
        reply = self._scripts.adopt_record(
            keys=[
                keys.lead_key(lead.id),
                keys.lead_events_key(lead.id),
                keys.status_counts_key(),
                keys.person_key(lead.person or ""),
            ],
            args=[
                lead.id,
                repr(now),
                sealed_record,
                lead.external_id,
                lead.phone_masked,
                json.dumps(list(lead.kept_warnings)),
                keys.RECORD_FIELD,
                keys.SUBMISSION_FIELD,
                lead.person_memory_seconds if lead.person else 0,
                lead.duplicate_window_seconds,
            ],
        )
        if isinstance(reply, list):
            return Adoption(LeadStatus.DUPLICATE, text(reply[1]) or "")
        status = text(reply)
        return Adoption(LeadStatus(status) if status else None)
