"""careCycle's standing as a worker's uploads find it: failing, or answering again, recorded in Redis and said once
per change.

A 5xx, a timeout or no connection starts (or goes on with) careCycle's failing spell, which `/v1/stats`, `/metrics`
and the dashboard show; met by the probe of a delivery pause (or a 429 so), it is shown beside the pause's cause
without ending the pause. An answer past authentication ends a delivery pause and the spell, whose retrying leads are
then due at once (`app.store.outage`). The worker says its failed uploads once per change
(`app.logs.RepeatedTrouble`), and a delivery pause (`app.logs.PauseLog`) when it starts or its reason changes,
recalled at most once a minute while its probes fail alike, and its end once.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from app.clock import Clock
from app.logs import PauseLog, RepeatedTrouble
from app.store import Store

# Beside a delivery pause's cause (a 401/403/404): what its last probe met when careCycle failed it otherwise.
PROBE_MET = "the last upload met: "


class CareCycleStanding:
    """Records careCycle failing or answering again for one worker's deliverer, and says so to `logger`."""

    def __init__(self, store: Store, clock: Clock, logger: logging.Logger) -> None:
        self._store = store
        self._clock = clock
        self._logger = logger
        self._failures = RepeatedTrouble(
            logger,
            clock.now,
            "upload failed, will retry: %s",
            "uploads still failing, retried with backoff: %s (%d more uploads failed alike in %.0f s)",
            level=logging.WARNING,
            quiet_at_debug=True,  # each failed call at debug, with its ids
            new_after_quiet=False,  # an answer from the service ends the spell
        )
        self._pause = PauseLog(logger, clock.now, "delivery")

    def paused(self, reason: str, now: float, next_probe_at: float) -> None:
        """Delivery pauses, or stays paused when a probe failed, for `reason` until `next_probe_at`."""
        change = self._store.pause.pause(reason, now, next_probe_at)
        self._pause.paused(change.reason, started=change.started)

    def upload_failed(self, message: str, batch_id: str) -> None:
        """An upload failed with `message` and its leads will be retried: said when new, else once a minute. While
        delivery is paused (the upload was its probe), the pause shows it beside its cause and goes on: an operator who
        fixed the key then sees that careCycle fails, not that it still refuses the key."""
        self._failures.met(message, {"batch_id": batch_id})
        try:
            shown = self._store.pause.note(f"{PROBE_MET}{message}")
        except RedisError:
            self._logger.warning("Redis did not answer: a delivery pause, if any, does not show what its probe met")
            return
        if shown is not None:
            self._pause.paused(shown, started=False)

    def failing(self, reason: str, now: float) -> None:
        """careCycle failed an upload (5xx, timeout, no connection): shown in the stats until it answers again."""
        try:
            self._store.outage.failing(reason, now)
        except RedisError:
            self._logger.warning("Redis did not answer: careCycle's failure is missing from the stats")

    def last_answered_at(self) -> float | None:
        """When careCycle last read an upload; None when never noted, or while Redis does not answer (no batch is
        taken for failing on a record of its own then)."""
        try:
            return self._store.outage.answered_at()
        except RedisError:
            return None

    def answered(self) -> None:
        """careCycle answered past authentication: a pause, if any, is over, and so is a spell of failures, whose
        retrying leads are due at once. While Redis does not answer, both stay until the next answer (a spell whose
        release Redis cut short too: the next answer makes the rest due)."""
        self._failures.ended()
        self._pause.ended()
        try:
            resumed = self._store.pause.resume()
            released = self._store.outage.recovered(self._clock.now())
        except RedisError:
            self._logger.warning(
                "Redis did not answer: a delivery pause or careCycle failing, if any, ends with the next answer"
            )
            return
        if resumed:
            self._logger.info("delivery resumed: careCycle accepts the configuration again")
        if released:
            self._logger.info("careCycle answers again: %d retrying leads are due now, oldest first", released)
        elif released is not None:  # the retrying leads were in this very upload, or none was waiting
            self._logger.info("careCycle answers again")
