"""Meta leadgen changes no facebook source routed when they came, each as its ids (never lead data) in one string,
remembered for as long as Meta keeps a lead, so that they are taken in once a source lists their Page or form."""

from __future__ import annotations

from redis import Redis

from app.store import keys
from app.store.codec import text

# The newest changes kept: an app subscribed to a Page that is no client's may announce leads no source will route.
MAX_UNROUTED_CHANGES = 10_000


class UnroutedChanges:
    """Leadgen changes skipped for want of a source, by when they first came (a sorted set of their ids)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def remember(self, changes: list[str], now: float, kept_seconds: float) -> None:
        """Keep `changes` (one entry per change, however often announced), forgetting those that came more than
        `kept_seconds` ago and all but the newest `MAX_UNROUTED_CHANGES`."""
        if not changes:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(keys.unrouted_changes_key(), dict.fromkeys(changes, now), nx=True)
        pipe.zremrangebyscore(keys.unrouted_changes_key(), "-inf", f"({now - kept_seconds!r}")
        pipe.zremrangebyrank(keys.unrouted_changes_key(), 0, -MAX_UNROUTED_CHANGES - 1)
        pipe.execute()

    def pending(self, since: float) -> list[str]:
        """Every change remembered that came at `since` or later, oldest first."""
        return [text(member) or "" for member in self._redis.zrangebyscore(keys.unrouted_changes_key(), since, "+inf")]

    def forget(self, changes: list[str]) -> None:
        """Forget `changes`: taken in, found taken in already, or unreadable."""
        if changes:
            self._redis.zrem(keys.unrouted_changes_key(), *changes)
