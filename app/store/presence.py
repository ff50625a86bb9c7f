"""Whether a worker of a given name runs: a short-lived key its ticker keeps alive."""

from __future__ import annotations

from redis import Redis

from app.store import keys


class WorkerPresence:
    """Liveness keys of named workers, refreshed every tick and gone a few ticks after a worker dies (however)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def mark_alive(self, name: str, ttl_seconds: float) -> None:
        """Note that the worker named `name` runs, for the next `ttl_seconds`."""
        self._redis.set(keys.worker_alive_key(name), "1", px=max(1, int(ttl_seconds * 1000)))

    def is_alive(self, name: str) -> bool:
        """True while a worker of that name has noted within its last expiry that it runs."""
        return bool(self._redis.exists(keys.worker_alive_key(name)))

    def mark_stopped(self, name: str) -> None:
        """Note that the worker named `name` stopped: its name is free at once."""
        self._redis.delete(keys.worker_alive_key(name))
