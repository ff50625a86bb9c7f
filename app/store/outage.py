"""careCycle failing: since when and why uploads fail with 5xx answers, timeouts or connection errors, and, once
careCycle answers again, the retrying leads made due at once, oldest first; and when careCycle last answered.

A lead that failed waits out its own backoff, up to `LEADRELAY_RETRY_MAX_DELAY_SECONDS`; after an outage of hours
every waiting lead is minutes from its next try. Without this, careCycle back up would sit idle that long while the
backlog trickled out in small requests, in no particular order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis

from app.models import LeadStatus
from app.store import keys
from app.store.codec import text
from app.store.scripts import Scripts

# Leads made due per script call: each call holds Redis for a few milliseconds, however large the backlog.
RELEASE_CHUNK = 500


@dataclass(frozen=True)
class Failing:
    """careCycle has been failing uploads since `since`; the last failure, at `last_at`, was `reason`."""

    since: float
    last_at: float
    reason: str


def failing_from_hash(raw: Mapping[bytes | str, bytes | str]) -> Failing | None:
    """The failing hash as read with HGETALL, None when empty (careCycle answers)."""
    if not raw:
        return None
    return Failing(
        since=float(raw.get(b"since") or 0),
        last_at=float(raw.get(b"last_at") or 0),
        reason=text(raw.get(b"reason")) or "",
    )


class CareCycleOutage:
    """Whether careCycle is failing uploads, shared by every worker, and the recovery of its retrying leads."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def get(self) -> Failing | None:
        """careCycle's failing spell, or None while it answers."""
        return failing_from_hash(self._redis.hgetall(keys.carecycle_failing_key()))

    def failing(self, reason: str, now: float) -> None:
        """An upload failed for `reason` (a 5xx, a timeout, no connection): the spell begins, or goes on."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hsetnx(keys.carecycle_failing_key(), "since", repr(now))
        pipe.hset(keys.carecycle_failing_key(), mapping={"last_at": repr(now), "reason": reason})
        pipe.execute()

    def recovered(self, now: float, chunk: int = RELEASE_CHUNK) -> int | None:
        """careCycle read an upload: note when, make every retrying lead due now in receipt order (but those of a
        fault group: careCycle failed their batch while it answered others), then end the spell. Returns how many
        leads this caller made due; None when careCycle was not failing (or the spell ended meanwhile).

        A release Redis cuts short (an error, a lost answer) leaves the spell on, so that the next answer makes the
        rest due. Two workers answered at once may share a large backlog's release, each lead made due once."""
        released: int | None = None
        passed_over = 0
        while True:
            made_due, looked_at, left = self._scripts.release_retrying(
                keys=[
                    keys.status_index_key(LeadStatus.RETRYING.value),
                    keys.ready_key(),
                    keys.status_counts_key(),
                    keys.carecycle_failing_key(),
                    keys.carecycle_answered_key(),
                ],
                args=[repr(now), chunk, keys.LEAD_KEY_PREFIX, keys.LEAD_EVENTS_SUFFIX, passed_over],
            )
            if int(made_due) < 0:
                return released
            released = (released or 0) + int(made_due)
            passed_over += int(left)
            if int(looked_at) < chunk:
                return released

    def answered_at(self) -> float | None:
        """When careCycle last read an upload (noted by `recovered`), None when not since this key was kept."""
        raw = self._redis.get(keys.carecycle_answered_key())
        return float(raw) if raw else None
