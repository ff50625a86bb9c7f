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

from app.logs import REMIND_EVERY_SECONDS, OncePerChange
from app.store.refusals import describe

logger = logging.getLogger(__name__)


class RedisTrouble:
    """The Redis trouble of each ticker step, by the step's name (e.g. "delivery ticker")."""

    def __init__(
        self, now: Callable[[], float] = time.monotonic, remind_every_seconds: float = REMIND_EVERY_SECONDS
    ) -> None:
        self._when = OncePerChange(now, remind_every_seconds)

    def failed(self, step: str, exc: RedisError) -> None:
        """`step` met `exc`: a warning if this trouble is new, or last said a minute ago or more."""
        what = describe(exc)
        say = self._when.met(what, key=step)
        if say is None:
            return
        if say.new:
            logger.warning("%s: redis %s; trying again next tick", step, what)
        else:
            logger.warning("%s: redis still %s since the last warning; trying again each tick", step, what)

    def succeeded(self, step: str) -> None:
        """`step` got through: one line if it had been in trouble."""
        if self._when.ended(step):
            logger.info("%s: redis answers again", step)
