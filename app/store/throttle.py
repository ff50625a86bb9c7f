"""Per-minute request limits of public intake (form posts): fixed-window counters in Redis.

A fixed window (the epoch minute) is one counter per client and window: a single atomic script call
per post, shared by every web process. Its known weakness, up to twice the limit across a window
boundary, is harmless at these limits; what matters is that a flood is cut within the minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True)
class WindowGate:
    """The fixed-window counters one request must pass, each with its limit and what it limits.

    Counted by `Throttle.hit`, or inside the admission script (`LeadStore.admit(gate=...)`) so that a
    form post costs one round trip; either way a refused request counts nowhere.
    """

    counters: tuple[str, ...]
    limits: tuple[int, ...]
    scopes: tuple[str, ...]
    window: int

    def refusal(self, position: int, now: float) -> RateLimitedError:
        """The error for a request refused by the counter at 1-based `position`."""
        retry_after = max(1, math.ceil((self.window + 1) * WINDOW_SECONDS - now))
        return RateLimitedError(self.scopes[position - 1], retry_after)


def form_gate(slug: str, client: str, *, per_client: int, per_source: int, now: float) -> WindowGate:
    """The limits of one post to form `slug` from `client` (a fingerprint): per client, then per source."""
    window = int(now // WINDOW_SECONDS)
    return WindowGate(
        counters=(keys.form_ip_throttle_key(slug, client, window), keys.form_throttle_key(slug, window)),
        limits=(per_client, per_source),
        scopes=("per client", "per source"),
        window=window,
    )


class Throttle:
    """Counts requests against per-minute limits and refuses the ones over a limit."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def hit(self, gate: WindowGate, now: float) -> None:
        """Count one request in every counter of `gate`; raises `RateLimitedError` when one is full."""
        full = int(self._scripts.hit_windows(keys=list(gate.counters), args=[WINDOW_SECONDS, *gate.limits]))
        if full:
            raise gate.refusal(full, now)
