"""The delivery queue: ready leads, atomically claimed batches, and reclaim after a visibility timeout."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis

from app.models import LeadStatus
from app.store import keys
from app.store.codec import text
from app.store.scripts import Scripts

_BATCH_PREFIX = keys.batch_key("")


@dataclass(frozen=True)
class ClaimedLead:
    """One lead of a claimed batch: its id, sealed record and the externalId it is sent under; when careCycle last
    failed it with a 5xx, the fault group it is sent in (see `app.store.keys.FAULT_GROUP_FIELD`), and when an
    operator last re-queued it."""

    id: str
    sealed_record: bytes
    external_id: str
    received_at: float
    attempts: int
    failed_at: float | None = None
    fault_group: str | None = None
    retried_at: float | None = None  # an operator's last re-queue of it

    @property
    def retries_since(self) -> float:
        """Since when its retries count towards the maximum age: its receipt, or an operator's later retry."""
        return max(self.received_at, self.retried_at or 0.0)


@dataclass(frozen=True)
class Batch:
    """Leads taken off the queue together, held in flight until settled or reclaimed."""

    id: str
    leads: tuple[ClaimedLead, ...]


@dataclass(frozen=True)
class Outcome:
    """The new state of one lead after an upload attempt."""

    lead_id: str
    status: LeadStatus
    detail: str
    error: str | None = None
    ready_at: float | None = None
    next_attempt_at: float | None = None
    failed_at: float | None = None  # careCycle failed the lead with a 5xx then
    fault_group: str | None = None  # the group it is sent in from now on, apart from every other lead
    count_attempt: bool = True

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.lead_id,
            "status": self.status.value,
            "detail": self.detail,
            "count_attempt": self.count_attempt,
        }
        # Absent rather than null: cjson turns null into a truthy value in Lua.
        for name in ("error", "ready_at", "next_attempt_at", "failed_at", "fault_group"):
            value = getattr(self, name)
            if value is not None:
                item[name] = repr(value) if isinstance(value, float) else value
        return item


class BatchStore:
    """Ready set and in-flight batches; claiming, settling and reclaiming are single Lua calls."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def claim(self, now: float, max_records: int, visibility_timeout: float) -> Batch | None:
        """Take up to `max_records` due leads of one fault group (most often: of none) into a new in-flight batch,
        or None when none is due."""
        batch_id = uuid.uuid4().hex
        flat = self._scripts.claim_batch(
            keys=[keys.ready_key(), keys.inflight_key(), keys.status_counts_key(), keys.batch_key(batch_id)],
            args=[
                repr(now),
                max_records,
                batch_id,
                repr(now + visibility_timeout),
                keys.LEAD_KEY_PREFIX,
                keys.LEAD_EVENTS_SUFFIX,
            ],
        )
        if not flat:
            return None
        leads = tuple(
            ClaimedLead(
                id=flat[i].decode(),
                sealed_record=flat[i + 1],
                external_id=flat[i + 2].decode(),
                received_at=float(flat[i + 3]),
                attempts=int(flat[i + 4]),
                failed_at=float(flat[i + 5]) if flat[i + 5] else None,
                fault_group=flat[i + 6].decode() or None,
                retried_at=float(flat[i + 7]) if flat[i + 7] else None,
            )
            for i in range(0, len(flat), 8)
        )
        return Batch(id=batch_id, leads=leads)

    def settle(self, batch_id: str, outcomes: list[Outcome], now: float, release: bool) -> set[str]:
        """Apply outcomes to the leads still in `batch_id`; with `release` the batch is done. Returns the ids of
        the leads changed: a lead no longer in the batch (taken for lost and sent by another worker) is not."""
        minute = int(now // 60)
        changed: list[bytes] = self._scripts.settle_leads(
            keys=[
                keys.inflight_key(),
                keys.status_counts_key(),
                keys.ready_key(),
                keys.batch_key(batch_id),
                keys.delivered_bucket_key(minute),
                keys.failed_bucket_key(minute),
                keys.latency_samples_key(),
                keys.last_delivery_key(),
                keys.delivered_second_key(int(now)),
                keys.failed_second_key(int(now)),
                keys.delivered_total_key(),
            ],
            args=[
                repr(now),
                batch_id,
                keys.LEAD_KEY_PREFIX,
                keys.LEAD_EVENTS_SUFFIX,
                "1" if release else "0",
                json.dumps([o.as_json() for o in outcomes]),
            ],
        )
        return {text(lead_id) or "" for lead_id in changed}

    def extend(self, batch_id: str, deadline: float) -> bool:
        """Push a batch's visibility deadline out while its worker is still at it; False when the batch is no
        longer in flight (taken for lost and reclaimed, or settled)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(keys.inflight_key(), {batch_id: deadline}, xx=True)
        pipe.zscore(keys.inflight_key(), batch_id)
        return pipe.execute()[1] is not None

    def reclaim_stale(self, now: float, max_age_seconds: float) -> int:
        """Put the leads of batches past their deadline back in the queue, each spending an attempt, or make
        those retried for longer than `max_age_seconds` `dead`; returns how many leads were reclaimed."""
        returned: int = self._scripts.reclaim_stale_batches(
            keys=[
                keys.inflight_key(),
                keys.ready_key(),
                keys.status_counts_key(),
                keys.failed_bucket_key(int(now // 60)),
                keys.failed_second_key(int(now)),
            ],
            args=[repr(now), keys.LEAD_KEY_PREFIX, keys.LEAD_EVENTS_SUFFIX, _BATCH_PREFIX, repr(max_age_seconds)],
        )
        return returned

    def has_due_work(self, now: float) -> bool:
        """True when a lead may be sent now or an in-flight batch has timed out."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrangebyscore(keys.ready_key(), "-inf", now, start=0, num=1)
        pipe.zrangebyscore(keys.inflight_key(), "-inf", now, start=0, num=1)
        due, stale = pipe.execute()
        return bool(due or stale)

    def depth(self) -> int:
        """Leads waiting in the ready set, due or not."""
        return int(self._redis.zcard(keys.ready_key()))

    def in_flight(self) -> int:
        """Batches currently being uploaded."""
        return int(self._redis.zcard(keys.inflight_key()))
