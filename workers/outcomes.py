"""What becomes of each lead of an upload, by careCycle's answer: pure functions from an answer to `Outcome`s."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from app.config import Settings
from app.models import LeadStatus
from app.store.batches import ClaimedLead, Outcome
from workers import backoff
from workers.carecycle import UploadResult

# How the error of a lead given up at the maximum age begins (a batch lost in flight says the same).
GAVE_UP = "gave up after maximum age:"


def reject(lead: ClaimedLead, reason: str) -> Outcome:
    """Refused by careCycle for `reason`: final."""
    return Outcome(lead.id, LeadStatus.REJECTED, reason, error=reason)


def requeue(lead: ClaimedLead, detail: str, ready_at: float | None = None) -> Outcome:
    """Back to the queue without spending an attempt (not the lead's fault), in receipt order unless `ready_at`."""
    at = lead.received_at if ready_at is None else ready_at
    return Outcome(lead.id, LeadStatus.QUEUED, detail, ready_at=at, count_attempt=False)


def unaccounted_leads(leads: Sequence[ClaimedLead], result: UploadResult) -> list[ClaimedLead]:
    """The leads careCycle may have counted among failures it did not name, to be tried again."""
    if result.failed <= len(result.failures):
        return []
    # careCycle counted failures it did not name by externalId. Where it lists every customer it took
    # (`results`, as many as `succeeded`), or took none, a lead in neither list may be one of them: it is
    # tried again (an upload of a customer careCycle has is an update). Otherwise nothing says which.
    listed: frozenset[str] | None = None
    if result.confirmed is not None and len(result.confirmed) >= result.succeeded:
        listed = result.confirmed
    elif result.succeeded == 0:
        listed = frozenset()
    if listed is None:
        return []
    accounted = listed | result.failures.keys()
    return [lead for lead in leads if lead.external_id not in accounted]


def outcomes_for_result(leads: Sequence[ClaimedLead], result: UploadResult, retried: Collection[str]) -> list[Outcome]:
    """Each lead careCycle refused is rejected, each other one delivered, except those `retried` (by id)."""
    outcomes = []
    for lead in leads:
        reason = result.failures.get(lead.external_id)
        if reason is not None:
            outcomes.append(reject(lead, reason))
        elif lead.id not in retried:
            outcomes.append(Outcome(lead.id, LeadStatus.DELIVERED, "accepted by careCycle"))
    return outcomes


def outcomes_for_refusal(leads: Sequence[ClaimedLead], record_messages: Mapping[int, str], now: float) -> list[Outcome]:
    """A 422: the records it names (by index) are rejected, their batch-mates queued to be sent again."""
    return [
        reject(lead, record_messages[i])
        if i in record_messages
        else Outcome(lead.id, LeadStatus.QUEUED, "resent: batch-mates refused", ready_at=now)
        for i, lead in enumerate(leads)
    ]


def retry_outcomes(
    leads: Sequence[ClaimedLead],
    error: str,
    now: float,
    *,
    hold: float,
    jitter: float,
    settings: Settings,
    failed_at: float | None = None,
    together: bool = False,
) -> list[Outcome]:
    """Each lead tried again after its backoff (and not before `hold` seconds), or dead once past the maximum age;
    `together`, all after the backoff of the most tried one (a fault group's leads are due at once). `failed_at`:
    careCycle failed them with a 5xx then."""
    max_age = settings.leadrelay_max_age_hours * 3600
    most_tried = max((lead.attempts for lead in leads), default=0)
    outcomes = []
    for lead in leads:
        if backoff.is_past_max_age(lead.retries_since, now, max_age):
            # The lead's error says why it stopped, then the last fault: "careCycle 503" alone reads as a fault
            # still being retried, not as retries given up.
            reason = f"{GAVE_UP} {error}"
            outcomes.append(Outcome(lead.id, LeadStatus.DEAD, reason, error=reason))
            continue
        delay = backoff.retry_delay_seconds(
            (most_tried if together else lead.attempts) + 1,
            settings.leadrelay_retry_base_seconds,
            settings.leadrelay_retry_max_delay_seconds,
            jitter,
        )
        at = now + max(delay, hold)
        outcomes.append(
            Outcome(
                lead.id, LeadStatus.RETRYING, error, error=error, ready_at=at, next_attempt_at=at, failed_at=failed_at
            )
        )
    return outcomes
