"""Whether a worker of a given name runs: a short-lived key its ticker keeps alive."""

from __future__ import annotations

from redis import Redis

from app.store import keys


class WorkerPresence:
    """Liveness keys of named workers, refreshed every tick and gone a few ticks after a worker dies (however)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def mark_alive(self, name: str, ttl_seconds: float, held_for_seconds: int) -> None:
        """Note that the worker named `name` runs, for the next `ttl_seconds`, and that it is one that keeps this
        note, for the next `held_for_seconds` (as long as RQ may keep its registration)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.worker_alive_key(name), "1", px=max(1, int(ttl_seconds * 1000)))
        pipe.set(keys.worker_named_key(name), "1", ex=max(1, held_for_seconds))
        pipe.execute()

    def is_alive(self, name: str) -> bool:
        """True while a worker of that name has noted within its last expiry that it runs."""
        return bool(self._redis.exists(keys.worker_alive_key(name)))

    def kept_by_last_holder(self, name: str) -> bool:
        """True when the last worker of that name kept a liveness key: without one now, it is gone."""
        return bool(self._redis.exists(keys.worker_named_key(name)))

    def mark_stopped(self, name: str) -> None:
        """Note that the worker named `name` stopped: its name is free at once."""
        self._redis.delete(keys.worker_alive_key(name), keys.worker_named_key(name))
