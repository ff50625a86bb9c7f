"""What a worker says while a service it calls fails alike: once per change, not once per call.

Through a careCycle outage every upload fails alike, up to `CARECYCLE_RATE_LIMIT_PER_MIN` a minute across the
workers, and through a Graph API outage every Meta lead's retrieval does; a warning per call (thousands an hour, each
the same) buries everything else on-call reads. A failure is logged when it is the first, or differs from the last
one said (a 503 turning into timeouts), recalled at most once a minute with how many failed alike meanwhile (each
of those at debug, with its ids), and the quiet ends with the first call the service takes again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

REMIND_EVERY_SECONDS = 60.0


@dataclass
class _Said:
    """The failure last logged, when, and how many calls failed alike since."""

    message: str
    at: float
    since: int = 0


class FailureLog:
    """Logs a worker's failed calls to `logger`: new or changed failures at once (`first`, with the failure), repeats
    once a minute (`still`, with the failure, how many failed alike and over how many seconds)."""

    def __init__(
        self,
        logger: logging.Logger,
        now: Callable[[], float],
        first: str,
        still: str,
        remind_every_seconds: float = REMIND_EVERY_SECONDS,
    ) -> None:
        self._logger = logger
        self._now = now
        self._first = first
        self._still = still
        self._remind_every = remind_every_seconds
        self._said: _Said | None = None

    def failed(self, message: str, ids: dict[str, str]) -> None:
        """A call failed with `message` and will be tried again; `ids` name what it was for."""
        now, said = self._now(), self._said
        if said is None or said.message != message:
            self._logger.warning(self._first, message, extra=ids)
        elif now - said.at >= self._remind_every:
            self._logger.warning(self._still, message, said.since + 1, now - said.at, extra=ids)
        else:
            said.since += 1
            self._logger.debug(self._first, message, extra=ids)
            return
        self._said = _Said(message, now)

    def answered(self) -> None:
        """The service took a call: the next failure is said at once."""
        self._said = None
