"""What a worker says while careCycle fails its uploads: once per change, not once per upload.

Through an outage every upload fails alike, up to `CARECYCLE_RATE_LIMIT_PER_MIN` a minute across the workers, and
a warning per upload (thousands an hour, each the same) buries everything else on-call reads. A failure is logged
when it is the first, or differs from the last one said (a 503 turning into timeouts), recalled at most once a
minute with how many failed alike meanwhile, and the quiet ends with the first upload careCycle takes (the worker
that makes the waiting leads due says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

REMIND_EVERY_SECONDS = 60.0


@dataclass
class _Said:
    """The failure last logged, when, and how many uploads failed alike since."""

    message: str
    at: float
    since: int = 0


class UploadFailureLog:
    """Logs a worker's failed uploads to `logger`: new or changed ones at once, repeats once a minute."""

    def __init__(
        self,
        logger: logging.Logger,
        now: Callable[[], float],
        remind_every_seconds: float = REMIND_EVERY_SECONDS,
    ) -> None:
        self._logger = logger
        self._now = now
        self._remind_every = remind_every_seconds
        self._said: _Said | None = None

    def failed(self, message: str, batch_id: str) -> None:
        """An upload failed with `message` and its leads will be retried."""
        now, said = self._now(), self._said
        if said is None or said.message != message:
            self._logger.warning("upload failed, will retry: %s", message, extra={"batch_id": batch_id})
        elif now - said.at >= self._remind_every:
            self._logger.warning(
                "uploads still failing, retried with backoff: %s (%d more uploads failed alike in %.0f s)",
                message,
                said.since + 1,
                now - said.at,
                extra={"batch_id": batch_id},
            )
        else:
            said.since += 1
            self._logger.debug("upload failed, will retry: %s", message, extra={"batch_id": batch_id})
            return
        self._said = _Said(message, now)

    def answered(self) -> None:
        """careCycle took an upload: the next failure is said at once."""
        self._said = None
