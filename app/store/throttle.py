"""Per-minute request limits of public intake (form posts): fixed-window counters in Redis.

A fixed window (the epoch minute) is one counter per client and window: a single atomic script call
per post, shared by every web process. Its known weakness, up to twice the limit across a window
boundary, is harmless at these limits; what matters is that a flood is cut within the minute.
"""

from __future__ import annotations

import math

from redis import Redis

from app.store import keys
from app.store.scripts import Scripts

WINDOW_SECONDS = 60


class RateLimitedError(Exception):
    """A limit is used up for this window; nothing was counted. `retry_after_seconds` until it resets."""

    def __init__(self, scope: str, retry_after_seconds: int) -> None:
        super().__init__(f"too many requests ({scope})")
        self.scope = scope
        self.retry_after_seconds = retry_after_seconds


class Throttle:
    """Counts requests against per-minute limits and refuses the ones over a limit."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def hit_form(self, slug: str, client: str, *, per_client: int, per_source: int, now: float) -> None:
        """Count one post to form `slug` from `client`; raises `RateLimitedError` when a limit is used up."""
        window = int(now // WINDOW_SECONDS)
        counters = [keys.form_ip_throttle_key(slug, client, window), keys.form_throttle_key(slug, window)]
        full = int(self._scripts.hit_windows(keys=counters, args=[WINDOW_SECONDS, per_client, per_source]))
        if full:
            retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
            raise RateLimitedError("per client" if full == 1 else "per source", retry_after)
