"""A failed upload's leads tried again: each after its backoff (and not before careCycle's retryAfter, which holds the
shared request budget too), dead once past the maximum age; a batch careCycle fails on a record of its own retried
in halves, each sent apart (`workers.isolation`); careCycle's failing spell kept (`workers.standing`)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from app.config import Settings
from app.models import LeadStatus
from app.store import Store
from app.store.batches import ClaimedLead, Outcome
from workers import backoff
from workers.carecycle import CareCycleRateLimitedError, CareCycleTransientError
from workers.isolation import fails_on_its_own, in_halves, is_server_error
from workers.outcomes import retry_outcomes
from workers.standing import CareCycleStanding


class Retrier:
    """The outcomes of leads careCycle did not take for a transient fault (a 5xx, a timeout, no connection, a 429),
    with what their failure says of careCycle; its lines are said by `logger` (delivery's)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        standing: CareCycleStanding,
        rng: random.Random,
        logger: logging.Logger,
    ) -> None:
        self._store = store
        self._settings = settings
        self._standing = standing
        self._rng = rng
        self._logger = logger

    def after_failure(
        self, batch_id: str, leads: Sequence[ClaimedLead], exc: CareCycleTransientError, now: float
    ) -> list[Outcome]:
        """`leads`, uploaded together, failed with `exc`: a 429 waits out careCycle's retryAfter; a 5xx again after
        careCycle read other uploads retries them in halves, apart; any other failure keeps careCycle's failing
        spell on and retries them (a fault group's together)."""
        if isinstance(exc, CareCycleRateLimitedError):  # careCycle answering: the relay's turn waits
            return self.retry(batch_id, leads, exc, now)
        server_error = is_server_error(exc)
        if server_error and fails_on_its_own(leads, self._standing.last_answered_at()):
            # Not careCycle being down (it read other uploads since): this batch's own record. Its leads go apart.
            self._logger.warning(
                "careCycle failed %s again while it read other uploads: retried apart from other leads, %s",
                count(len(leads), "lead"),
                "in halves" if len(leads) > 1 else "alone",
                extra={"lead_ids": [lead.id for lead in leads]},
            )
            return in_halves(leads, self.retry(batch_id, leads, exc, now, failed_at=now, together=True))
        self._standing.failing(exc.message, now)
        failed_at = now if server_error else None
        together = leads[0].fault_group is not None  # a fault group's leads stay together
        return self.retry(batch_id, leads, exc, now, failed_at=failed_at, together=together)

    def retry(
        self,
        batch_id: str,
        leads: Sequence[ClaimedLead],
        exc: CareCycleTransientError,
        now: float,
        *,
        failed_at: float | None = None,
        together: bool = False,
    ) -> list[Outcome]:
        """Each of `leads` tried again after its backoff, or dead once past the maximum age (see
        `workers.outcomes.retry_outcomes`); a 429's retryAfter holds the request budget."""
        hold = 0.0
        if isinstance(exc, CareCycleRateLimitedError):
            hold = exc.retry_after
            self._store.budget.hold_until(now + hold, now)
        jitter = backoff.jitter_factor(self._rng)
        self._standing.upload_failed(exc.message, batch_id)
        outcomes = retry_outcomes(
            leads,
            exc.message,
            now,
            hold=hold,
            jitter=jitter,
            settings=self._settings,
            failed_at=failed_at,
            together=together,
        )
        # One line for the batch, however many leads it gives up: a backlog that reaches the maximum age together
        # would otherwise write thousands of identical lines in seconds. Each lead stays findable by its id.
        if dead := [outcome.lead_id for outcome in outcomes if outcome.status is LeadStatus.DEAD]:
            self._logger.warning(
                "%s given up after the maximum age: %s",
                count(len(dead), "lead"),
                exc.message,
                extra={"lead_ids": dead},
            )
        return outcomes


def count(number: int, noun: str) -> str:
    """`1 lead`, `3 leads`: a count for a log line."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
