"""The careCycle request budget shared by every worker, the delivery pause, and delivery lanes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline

from app.store import keys
from app.store.codec import text
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


@dataclass(frozen=True)
class Pause:
    """Delivery is paused: why, since when, and when the next probe request may go."""

    reason: str
    since: float
    next_probe_at: float


def pause_from_hash(raw: Mapping[bytes | str, bytes | str]) -> Pause | None:
    """A pause hash as read with HGETALL, None when empty (no pause)."""
    if not raw:
        return None
    return Pause(
        reason=text(raw.get(b"reason")) or "",
        since=float(raw.get(b"since") or 0),
        next_probe_at=float(raw.get(b"next_probe_at") or 0),
    )


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


class PauseSwitch:
    """A pause for configuration faults and its single probe: delivery's (careCycle 401/403/404) by default,
    or another one under its own `key` (Graph retrieval's, for token and permission errors and timeouts)."""

    def __init__(self, redis: Redis, scripts: Scripts, key: str | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self._key = key or keys.pause_key()

    def get(self) -> Pause | None:
        """The current pause, or None while delivery runs."""
        return pause_from_hash(self._redis.hgetall(self._key))

    def pause(self, reason: str, now: float, next_probe_at: float) -> bool:
        """Pause delivery (or keep it paused), keeping the original start time; True when this started the pause."""
        pipe = self._redis.pipeline(transaction=True)
        self.queue_pause(pipe, reason, now, next_probe_at)
        started, _ = pipe.execute()
        return bool(started)

    def queue_pause(self, pipe: Pipeline, reason: str, now: float, next_probe_at: float) -> None:
        """Queue `pause`'s two writes on `pipe` (a transaction): the first answers whether they started the pause."""
        pipe.hsetnx(self._key, "since", repr(now))
        pipe.hset(self._key, mapping={"reason": reason, "next_probe_at": repr(next_probe_at)})

    def resume(self) -> bool:
        """End the pause; True when there was one."""
        return bool(self._redis.delete(self._key))

    def take_probe(self, now: float, interval_seconds: float) -> bool:
        """True for exactly one caller once the probe time has come: that caller sends the probe."""
        return bool(self._scripts.take_probe(keys=[self._key], args=[repr(now), repr(now + interval_seconds)]))


class PagePauses:
    """Retrieval pauses of single Meta Pages (the token lacks a permission for one Page's leads), each with its own
    probe, and listed together for stats."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def switch(self, page_id: str) -> PauseSwitch:
        """The pause of one Page's retrieval and its probe."""
        return PauseSwitch(self._redis, self._scripts, keys.page_fetch_pause_key(page_id))

    def pause(self, page_id: str, reason: str, now: float, next_probe_at: float) -> bool:
        """Pause one Page's retrieval (or keep it paused), keeping the original start time; True when this started
        the pause. Listed in the same transaction, so that a probe resuming the Page meanwhile leaves no Page listed
        as paused that is not (nor one paused that is not listed: a retrieval reads the list to know)."""
        pipe = self._redis.pipeline(transaction=True)
        self.switch(page_id).queue_pause(pipe, reason, now, next_probe_at)
        pipe.hset(keys.paused_pages_key(), page_id, reason)
        started, *_ = pipe.execute()
        return bool(started)

    def resume(self, page_id: str) -> bool:
        """End one Page's pause; True when there was one."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.page_fetch_pause_key(page_id))
        pipe.hdel(keys.paused_pages_key(), page_id)
        ended, _ = pipe.execute()
        return bool(ended)


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
