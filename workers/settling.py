"""Settling uploads: storing what became of a batch's leads through a Redis that is away a moment, and counting
each upload in the metrics."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

from redis.exceptions import RedisError

from app.clock import Clock
from app.config import Settings
from app.models import LeadStatus
from app.store import Store
from app.store.batches import ClaimedLead, Outcome
from workers.carecycle import CareCycleError, outcome_label

logger = logging.getLogger(__name__)

# Waits between tries to store a batch's outcome while Redis does not answer (then the last, repeated).
SETTLE_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0)


class Settler:
    """Stores the outcomes of a batch's uploads and counts the uploads."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def settle_and_count(
        self, error: CareCycleError | None, batch_id: str, leads: Sequence[ClaimedLead], outcomes: list[Outcome]
    ) -> None:
        """Settle an upload's outcomes, then count the request with those that took effect (a lead another
        worker took over meanwhile is its to count)."""
        changed = self.settle(batch_id, outcomes)
        self.count(error, leads, [outcome for outcome in outcomes if outcome.lead_id in changed])

    def count(self, error: CareCycleError | None, leads: Sequence[ClaimedLead], outcomes: list[Outcome]) -> None:
        """Count the upload in the metrics; a Redis that does not answer costs the numbers, not the batch."""
        now = self._clock.now()
        delivered = {o.lead_id for o in outcomes if o.status is LeadStatus.DELIVERED}
        latencies = [now - lead.received_at for lead in leads if lead.id in delivered]
        statuses = [o.status.value for o in outcomes]
        try:
            self._store.metrics.record_upload(outcome_label(error), len(leads), statuses, latencies)
        except RedisError:
            logger.warning("Redis did not answer: an upload is missing from the metrics")

    def settle(self, batch_id: str, outcomes: list[Outcome]) -> set[str]:
        """Store what became of a batch's leads; returns the ids of those changed. careCycle has answered by
        now: if that answer were lost, the batch would be sent again once its lease ran out, so Redis being
        away a moment is waited out (within half the lease; settling twice changes nothing the second time,
        and answers no ids: a settle whose reply was lost goes uncounted in the metrics)."""
        if not outcomes:
            return set()
        give_up_at = self._clock.now() + self._settings.leadrelay_visibility_timeout_seconds / 2
        delays = itertools.chain(SETTLE_RETRY_SECONDS, itertools.repeat(SETTLE_RETRY_SECONDS[-1]))
        while True:
            try:
                return self._store.batches.settle(batch_id, outcomes, self._clock.now(), release=False)
            except RedisError:
                delay = next(delays)
                if self._clock.now() + delay > give_up_at:
                    raise
                logger.warning("Redis did not answer while settling a batch; trying again in %g s", delay)
                self._clock.sleep(delay)
