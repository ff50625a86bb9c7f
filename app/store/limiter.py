"""The careCycle request budget shared by every worker, and delivery lanes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis import Redis

from app.store import keys
from app.store.scripts import Scripts

RATE_WINDOW_SECONDS = 60.0
# Requests are paced slightly wider than limit/60 s: arrival jitter at careCycle must never squeeze
# limit + 1 requests into one 60-second window.
PACING_MARGIN = 1.02


@dataclass(frozen=True)
class Slot:
    """A reserved upload slot; `tat` identifies it for a give-back."""

    reserved_at: float
    tat: str


class RequestBudget:
    """GCRA pacing of upload requests: one slot per `60 / limit` seconds across all workers."""

    def __init__(self, redis: Redis, scripts: Scripts, limit_per_min: int) -> None:
        self._redis = redis
        self._scripts = scripts
        self.limit_per_min = limit_per_min
        self.interval_seconds = RATE_WINDOW_SECONDS / limit_per_min * PACING_MARGIN

    def announce_limit(self, ttl_seconds: float) -> None:
        """Note the limit this process paces by, for the next `ttl_seconds`: stats show the limit the workers use,
        not the setting of the shell or web process that reads them. Workers running with different limits (in a
        rollout) note theirs in turn: the last one is shown."""
        self._redis.set(keys.rate_limit_in_use_key(), self.limit_per_min, px=max(1, int(ttl_seconds * 1000)))

    def reserve(self, now: float) -> Slot | float:
        """Reserve the next slot, or return the seconds to wait until one is free."""
        verdict, value = self._scripts.reserve_slot(
            keys=[keys.limiter_key(), keys.request_log_key()],
            args=[repr(now), repr(self.interval_seconds), RATE_WINDOW_SECONDS],
        )
        if verdict == b"ok":
            return Slot(reserved_at=now, tat=value.decode())
        return max(float(value), 0.001)

    def release(self, slot: Slot) -> bool:
        """Give back an unused slot if no later one was reserved since."""
        released: int = self._scripts.release_slot(
            keys=[keys.limiter_key(), keys.request_log_key()],
            args=[slot.tat, repr(self.interval_seconds), repr(slot.reserved_at)],
        )
        return bool(released)

    def hold_until(self, until: float, now: float) -> None:
        """No upload before `until` (careCycle's retryAfter), for every worker."""
        ttl = max(1, math.ceil(until - now + RATE_WINDOW_SECONDS))
        self._scripts.block_until(keys=[keys.limiter_key()], args=[repr(until), ttl])


class Lanes:
    """Leases that keep at most one delivery job per lane queued or running."""

    def __init__(self, redis: Redis, count: int, ttl_seconds: float) -> None:
        self._redis = redis
        self.count = count
        self._ttl_ms = max(1000, int(ttl_seconds * 1000))
        self.ttl_seconds = self._ttl_ms / 1000

    def free_lanes(self) -> list[int]:
        """Lanes with no job, in one round trip."""
        held = self._redis.mget([keys.lane_key(lane) for lane in range(self.count)])
        return [lane for lane, value in enumerate(held) if value is None]

    def acquire(self, lane: int) -> bool:
        """Take the lane's lease; False when a job for it already exists."""
        return bool(self._redis.set(keys.lane_key(lane), "1", nx=True, px=self._ttl_ms))

    def renew(self, lane: int) -> None:
        """Keep the lease while the job works."""
        self._redis.set(keys.lane_key(lane), "1", px=self._ttl_ms)

    def release(self, lane: int) -> None:
        """Give the lease up when the job stops."""
        self._redis.delete(keys.lane_key(lane))
