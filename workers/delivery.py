"""Delivery: take a batch when a request slot is free, open its records (`workers.opening`), upload them, judge the
answer (`workers.outcomes`), settle the leads (`workers.settling`); a transient fault's leads are retried by
`workers.retrying`; a split batch's later requests wait for their slot (`workers.slots`)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.clock import Clock
from app.config import Settings
from app.crypto import RecordCipher
from app.logs import log_ids
from app.models import MAX_BATCH_RECORDS, LeadStatus
from app.store import Store
from app.store.batches import Batch, ClaimedLead, Outcome
from app.store.limiter import Slot
from workers.carecycle import (
    CareCycleClient,
    CareCycleConfigurationError,
    CareCycleError,
    CareCycleNotFoundError,
    CareCycleRequestError,
    CareCycleTransientError,
    CareCycleValidationError,
    UploadResult,
)
from workers.opening import Entry, open_batch
from workers.outcomes import (
    outcomes_for_refusal,
    outcomes_for_result,
    reject,
    requeue,
    unaccounted_leads,
)
from workers.retrying import Retrier, count
from workers.settling import Settler
from workers.slots import SlotWaiter
from workers.standing import CareCycleStanding

logger = logging.getLogger(__name__)

# Sources of a batch answered 404 sent on their own before the split stops: a wrong URL costs this many
# requests more, however many sources the batch holds.
MAX_SOURCES_UNREAD = 3

UNREADABLE_RECORDS = "stored records cannot be decrypted: check LEADRELAY_ENCRYPTION_KEY"
UNREADABLE_RECORD = "stored record cannot be decrypted with the configured LEADRELAY_ENCRYPTION_KEY keys"


@dataclass(frozen=True)
class Idle:
    """Nothing can be sent now."""


@dataclass(frozen=True)
class Wait:
    """Work is due but the shared request budget frees a slot only after `seconds`."""

    seconds: float


@dataclass(frozen=True)
class Sent:
    """One batch went through the upload cycle."""

    batch_id: str


Step = Idle | Wait | Sent


class Deliverer:
    """Moves leads from the ready queue to careCycle, one batch per free request slot."""

    def __init__(
        self,
        store: Store,
        client: CareCycleClient,
        cipher: RecordCipher,
        settings: Settings,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._cipher = cipher
        self._settings = settings
        self._clock = clock
        self._settler = Settler(store, settings, clock)
        self._slots = SlotWaiter(store, clock, settings.leadrelay_visibility_timeout_seconds)
        self._standing = CareCycleStanding(store, clock, logger)  # its lines are said as delivery's
        self._retrier = Retrier(store, settings, self._standing, rng or random.Random(), logger)

    def is_due(self) -> bool:
        """True when a step could send something now (or reclaim a stale batch)."""
        now = self._clock.now()
        pause = self._store.pause.get()
        if pause is not None and now < pause.next_probe_at:
            return False
        return self._store.batches.has_due_work(now)

    def step(self) -> Step:
        """Send at most one batch: the unit of work of a delivery lane."""
        now = self._clock.now()
        if reclaimed := self._store.batches.reclaim_stale(now, self._settings.leadrelay_max_age_hours * 3600):
            # Each lead back in the queue (its events say so), or dead when past the maximum age.
            logger.warning(
                "took back %d leads of batches left in flight past the visibility timeout (worker gone or stalled)",
                reclaimed,
            )
        pause = self._store.pause.get()
        if pause is not None:
            if now < pause.next_probe_at or not self._store.pause.take_probe(
                now, self._settings.leadrelay_pause_probe_seconds
            ):
                return Idle()
        if not self._store.batches.has_due_work(now):
            return Idle()
        slot = self._store.budget.reserve(now)
        if not isinstance(slot, Slot):
            return Wait(slot)
        batch = self._store.batches.claim(now, MAX_BATCH_RECORDS, self._settings.leadrelay_visibility_timeout_seconds)
        if batch is None:
            self._store.budget.release(slot)
            return Idle()
        self._deliver(batch, probing=pause is not None)
        return Sent(batch.id)

    def _deliver(self, batch: Batch, probing: bool) -> None:
        with log_ids(batch_id=batch.id):
            self._deliver_batch(batch, probing)

    def _deliver_batch(self, batch: Batch, probing: bool) -> None:
        opened = open_batch(batch, self._cipher)
        entries, deferred, unreadable = opened.entries, opened.deferred, opened.unreadable
        if unreadable and not entries:
            # Not one record opens: the configured keys are wrong, not the leads. Wait for the fix.
            self._pause_for(batch, UNREADABLE_RECORDS)
            return
        now = self._clock.now()
        # A repeat goes behind the queue's current work, not back to its head: many leads sharing one inbound
        # externalId would otherwise fill every batch and hold up all the others.
        outcomes = [requeue(lead, "externalId repeated in batch", ready_at=now) for lead in deferred]
        # Some records open and these do not: sealed under a key no longer configured. They stop here,
        # record kept, so an operator can retry them once the key is back; the others go on.
        outcomes += [
            Outcome(lead.id, LeadStatus.DEAD, UNREADABLE_RECORD, error=UNREADABLE_RECORD) for lead in unreadable
        ]
        if outcomes:
            self._settler.settle(batch.id, outcomes)
        if not entries:
            self._store.batches.settle(batch.id, [], self._clock.now(), release=True)
            return
        if probing:
            # At debug: a failed probe is counted in the pause's reminder, and a successful one ends it.
            logger.debug("sending a probe batch while delivery is paused", extra={"batch_id": batch.id})
        self._upload(batch.id, entries, have_slot=True)
        self._store.batches.settle(batch.id, [], self._clock.now(), release=True)

    def _upload(
        self,
        batch_id: str,
        entries: Sequence[Entry],
        have_slot: bool,
        *,
        not_found: list[tuple[Sequence[Entry], CareCycleNotFoundError]] | None = None,
    ) -> bool:
        """Send `entries` and settle them by careCycle's answer; True when careCycle read them (it took them,
        or judged their fields: a 2xx batch answer or a 422).

        With `not_found` (one source's records, split off a batch careCycle answered 404), a 404 is left there
        to be judged once the batch's other sources have been sent, and the pause does not hold the upload.
        """
        if not have_slot and not self._slots.wait(batch_id, despite_pause=not_found is not None):
            self._settler.settle(batch_id, [requeue(e.lead, "delivery paused") for e in entries])
            return False
        try:
            result = self._client.upload([e.record for e in entries])
        except CareCycleValidationError as exc:
            self._standing.answered()
            if not any(0 <= index < len(entries) for index in exc.record_messages):
                # A 422 naming no record of this batch cannot say which to refuse: find it by halving.
                self._bisect(batch_id, entries, exc)
                return True
            self._settle_after(exc, batch_id, entries, self._outcomes_for_error(batch_id, entries, exc))
            return True
        except CareCycleRequestError as exc:
            self._standing.answered()
            self._bisect(batch_id, entries, exc)
            return False
        except CareCycleNotFoundError as exc:
            if not_found is not None:
                not_found.append((entries, exc))
            elif len(groups := _by_source_id(entries)) > 1:
                self._record(exc, entries, [])
                self._split_by_source(batch_id, groups)
            else:
                self._settle_after(exc, batch_id, entries, self._outcomes_for_error(batch_id, entries, exc))
            return False
        except CareCycleError as exc:
            self._settle_after(exc, batch_id, entries, self._outcomes_for_error(batch_id, entries, exc))
            return False
        self._standing.answered()
        self._settle_after(None, batch_id, entries, self._outcomes_for_result(batch_id, entries, result))
        return True

    def _split_by_source(self, batch_id: str, groups: Sequence[Sequence[Entry]]) -> None:
        """A 404 for a batch of several sources may be careCycle not knowing one `sourceId`, not a wrong URL:
        each source's records are sent on their own, until careCycle reads one source's (then the rest are
        sent too) or has answered 404 to `MAX_SOURCES_UNREAD` of them (a wrong URL: the rest wait, unsent).
        Once careCycle has read some, the sources answered 404 before that are sent once more (careCycle may have
        answered 404 to everything for a moment); then the records it answered its own `NOT_FOUND` for are refused
        (their `sourceId` is unknown to it) and those another server answered 404 for are retried; otherwise
        delivery pauses as for any 404."""
        not_found: list[tuple[Sequence[Entry], CareCycleNotFoundError]] = []
        unsent: list[Entry] = []
        read = False
        unread = 0  # how many of the 404s came before careCycle read any source
        for group in groups:
            if not read and len(not_found) >= MAX_SOURCES_UNREAD:
                unsent.extend(group)
                continue
            read = self._upload(batch_id, group, have_slot=False, not_found=not_found) or read
            unread = unread if read else len(not_found)
        if read and unread:
            # Those may have met a careCycle answering 404 to everything for a moment (as before a split): each is
            # sent once more, now that careCycle reads, so that every 404 judged below came after a read.
            early, not_found = not_found[:unread], not_found[unread:]
            for group, exc in early:
                self._record(exc, group, [])
                self._upload(batch_id, group, have_slot=False, not_found=not_found)
        for group, exc in not_found:
            if read and exc.coded:
                source_id = group[0].record.get("sourceId")
                reason = f"{exc.message}: careCycle read this batch's other sources, not sourceId {source_id!r}"
                outcomes = [reject(entry.lead, reason) for entry in group]
            elif read:  # not careCycle's own 404 (a proxy's, mid-rollout): tried again like any fault
                fault = CareCycleTransientError(exc.message, exc.status)
                outcomes = self._retrier.retry(batch_id, _leads(group), fault, self._clock.now())
            else:
                outcomes = self._outcomes_for_error(batch_id, group, exc)
            self._settle_after(exc, batch_id, group, outcomes)
        if unsent:
            waiting = "delivery paused: careCycle answered 404"
            self._settler.settle(batch_id, [requeue(entry.lead, waiting) for entry in unsent])

    def _settle_after(
        self, error: CareCycleError | None, batch_id: str, entries: Sequence[Entry], outcomes: list[Outcome]
    ) -> None:
        self._settler.settle_and_count(error, batch_id, _leads(entries), outcomes)

    def _record(self, error: CareCycleError | None, entries: Sequence[Entry], outcomes: list[Outcome]) -> None:
        self._settler.count(error, _leads(entries), outcomes)

    def _bisect(self, batch_id: str, entries: Sequence[Entry], error: CareCycleError) -> None:
        """Isolate the record careCycle refuses by sending halves until one record is left; each request is
        counted (as `error`), the last with its lead rejected."""
        if len(entries) == 1:
            lead = entries[0].lead
            self._settle_after(error, batch_id, entries, [reject(lead, error.message)])
            logger.warning("record rejected by careCycle", extra={"lead_id": lead.id, "status": error.status})
            return
        self._record(error, entries, [])
        middle = len(entries) // 2
        logger.info(
            "splitting batch after careCycle %s", error.status, extra={"batch_id": batch_id, "records": len(entries)}
        )
        for half in (entries[:middle], entries[middle:]):
            self._upload(batch_id, half, have_slot=False)

    def _outcomes_for_result(self, batch_id: str, entries: Sequence[Entry], result: UploadResult) -> list[Outcome]:
        leads = _leads(entries)
        rejected = len(result.failures)
        unaccounted = unaccounted_leads(leads, result)
        if result.failed > rejected:
            logger.warning(
                "careCycle reported %d failed records but named %d",
                result.failed,
                rejected,
                extra={"records": len(entries), "retried": len(unaccounted)},
            )
        if refused := [lead.id for lead in leads if lead.external_id in result.failures]:
            logger.warning(
                "careCycle refused %s of a batch", count(len(refused), "record"), extra={"lead_ids": refused}
            )
        outcomes = outcomes_for_result(leads, result, retried={lead.id for lead in unaccounted})
        if unaccounted:
            unnamed = CareCycleTransientError("careCycle counted the record as failed without naming it")
            outcomes += self._retrier.retry(batch_id, unaccounted, unnamed, self._clock.now())
        logger.info("batch uploaded", extra={"records": len(entries), "rejected": rejected})
        return outcomes

    def _outcomes_for_error(self, batch_id: str, entries: Sequence[Entry], exc: CareCycleError) -> list[Outcome]:
        now = self._clock.now()
        if isinstance(exc, CareCycleValidationError):
            refused = [e.lead.id for i, e in enumerate(entries) if i in exc.record_messages]
            logger.warning(
                "careCycle refused %s of a batch",
                count(len(refused), "record"),
                extra={"batch_id": batch_id, "lead_ids": refused},
            )
            return outcomes_for_refusal(_leads(entries), exc.record_messages, now)
        if isinstance(exc, CareCycleConfigurationError):
            self._pause_until_probe(exc.message, now)
            return [requeue(e.lead, f"delivery paused: {exc.message}") for e in entries]
        assert isinstance(exc, CareCycleTransientError)
        return self._retrier.after_failure(batch_id, _leads(entries), exc, now)

    def _pause_until_probe(self, reason: str, now: float) -> None:
        self._standing.paused(reason, now, now + self._settings.leadrelay_pause_probe_seconds)

    def _pause_for(self, batch: Batch, reason: str) -> None:
        now = self._clock.now()
        self._pause_until_probe(reason, now)
        self._settler.settle(batch.id, [requeue(lead, f"delivery paused: {reason}") for lead in batch.leads])
        self._store.batches.settle(batch.id, [], self._clock.now(), release=True)


def _by_source_id(entries: Sequence[Entry]) -> list[list[Entry]]:
    """The entries grouped by their record's `sourceId`, in the order the sources first appear."""
    groups: dict[Any, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.record.get("sourceId"), []).append(entry)
    return list(groups.values())


def _leads(entries: Sequence[Entry]) -> list[ClaimedLead]:
    return [entry.lead for entry in entries]
