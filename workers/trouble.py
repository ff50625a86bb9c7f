"""What the worker's ticker says while Redis refuses its steps: once per change, not once per tick.

Each ticker step tries again every second, so a Redis away for an hour would write thousands of identical
warnings that bury everything else on-call reads. A step's trouble is logged when it starts or changes (say, from
unreachable to read-only), recalled at most once a minute while it lasts, and ended with one line when the step
gets through again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from app.store.refusals import describe

logger = logging.getLogger(__name__)

REMIND_EVERY_SECONDS = 60.0


class RedisTrouble:
    """The Redis trouble of each ticker step, by the step's name (e.g. "delivery ticker")."""

    def __init__(
        self, now: Callable[[], float] = time.monotonic, remind_every_seconds: float = REMIND_EVERY_SECONDS
    ) -> None:
        self._now = now
        self._remind_every = remind_every_seconds
        self._said: dict[str, tuple[str, float]] = {}  # step -> (what Redis answered, when it was last said)

    def failed(self, step: str, exc: RedisError) -> None:
        """`step` met `exc`: a warning if this trouble is new, or last said a minute ago or more."""
        what, now = describe(exc), self._now()
        said = self._said.get(step)
        if said is None or said[0] != what:
            logger.warning("%s: redis %s; trying again next tick", step, what)
        elif now - said[1] >= self._remind_every:
            logger.warning("%s: redis still %s since the last warning; trying again each tick", step, what)
        else:
            return
        self._said[step] = (what, now)

    def succeeded(self, step: str) -> None:
        """`step` got through: one line if it had been in trouble."""
        if self._said.pop(step, None) is not None:
            logger.info("%s: redis answers again", step)
