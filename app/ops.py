"""Operational queries behind `/v1/stats`, the dashboard and the CLI: cheap reads, no scans."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.models import LeadStatus
from app.store import Store, keys
from app.store.codec import text
from app.store.limiter import RATE_WINDOW_SECONDS

MAX_BATCH_RECORDS = 200


@dataclass(frozen=True)
class StatsQuery:
    """What computing stats needs: the store, the configured limit and the time."""

    store: Store
    rate_limit_per_min: int
    now: float


def collect_stats(query: StatsQuery) -> dict[str, Any]:
    """The numbers of `/v1/stats` (a fixed number of Redis reads, whatever the number of leads)."""
    store, now = query.store, query.now
    counts = store.leads.status_counts()
    depth = store.batches.depth()
    oldest = store.batches.oldest_ready_score()
    pause = store.pause.get()
    minute = int(now // 60)
    delivered = _bucket_sums(store, keys.delivered_bucket_key, minute)
    failed = _bucket_sums(store, keys.failed_bucket_key, minute)
    ceiling_per_second = query.rate_limit_per_min * MAX_BATCH_RECORDS / RATE_WINDOW_SECONDS
    last = text(store.redis.get(keys.last_delivery_key()))
    return {
        "counts": {status.value: counts[status] for status in LeadStatus},
        "queueDepth": depth,
        "inFlightBatches": store.batches.in_flight(),
        "oldestQueuedAgeSeconds": round(max(0.0, now - oldest), 3) if oldest is not None and oldest <= now else 0.0,
        "delivered": {"last5m": delivered[0], "last1h": delivered[1]},
        "failed": {"last5m": failed[0], "last1h": failed[1]},
        "rateBudget": {
            "limitPerMinute": query.rate_limit_per_min,
            "usedLastMinute": store.budget.requests_in_window(now),
        },
        "estimatedDrainSeconds": math.ceil(depth / ceiling_per_second) if depth else 0,
        "paused": pause is not None,
        "pause": None
        if pause is None
        else {"reason": pause.reason, "since": pause.since, "nextProbeAt": pause.next_probe_at},
        "lastDeliveryAt": float(last) if last else None,
        "latencySeconds": _latency_percentiles(store),
    }


def _bucket_sums(store: Store, key_for: Any, minute: int) -> tuple[int, int]:
    values = store.redis.mget([key_for(m) for m in range(minute - 59, minute + 1)])
    per_minute = [int(v) if v else 0 for v in values]
    return sum(per_minute[-5:]), sum(per_minute)


def _latency_percentiles(store: Store) -> dict[str, float | None]:
    samples = sorted(float(v) for v in store.redis.lrange(keys.latency_samples_key(), 0, -1))
    if not samples:
        return {"p50": None, "p95": None}
    return {"p50": round(_percentile(samples, 0.50), 3), "p95": round(_percentile(samples, 0.95), 3)}


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]
