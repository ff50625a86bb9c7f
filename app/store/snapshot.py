"""Everything `/v1/stats` shows, and the gauges `/metrics` shows, each read in one pipelined round trip
whatever the number of leads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from app.models import LeadStatus
from app.store import keys
from app.store.leads import counts_from_hash
from app.store.limiter import RATE_WINDOW_SECONDS, Pause, pause_from_hash

STATS_WINDOW_MINUTES = 60


@dataclass(frozen=True)
class Gauges:
    """The store's state now, as `/metrics` shows it: lead counts, queue depth, oldest due lead, pause."""

    counts: dict[LeadStatus, int]
    queue_depth: int
    oldest_ready_score: float | None
    pause: Pause | None


@dataclass(frozen=True)
class StatsSnapshot:
    """Raw numbers of the store at one instant; `app.ops` derives the stats from them."""

    gauges: Gauges
    in_flight_batches: int
    retrieval_pause: Pause | None
    delivered_per_minute: list[int]
    failed_per_minute: list[int]
    requests_last_minute: int
    last_delivery_at: float | None
    latency_samples: list[float]


def _read_gauges_into(pipe: Pipeline) -> int:
    """Queue the gauges' reads on `pipe`; returns how many replies they take."""
    pipe.hgetall(keys.status_counts_key())
    pipe.zcard(keys.ready_key())
    pipe.zrange(keys.ready_key(), 0, 0, withscores=True)
    pipe.hgetall(keys.pause_key())
    return 4


def _gauges(replies: list[Any]) -> Gauges:
    counts, depth, oldest, pause = replies
    return Gauges(
        counts=counts_from_hash(counts),
        queue_depth=int(depth),
        oldest_ready_score=float(oldest[0][1]) if oldest else None,
        pause=pause_from_hash(pause),
    )


def read_gauges(redis: Redis) -> Gauges:
    """Four cheap reads in one round trip (a scrape needs none of the stats' per-minute history)."""
    pipe = redis.pipeline(transaction=False)
    _read_gauges_into(pipe)
    return _gauges(pipe.execute())


def read_snapshot(redis: Redis, now: float) -> StatsSnapshot:
    """One pipeline of fixed length; the per-minute lists run oldest to newest, ending with this minute."""
    minute = int(now // 60)
    minutes = range(minute - STATS_WINDOW_MINUTES + 1, minute + 1)
    pipe = redis.pipeline(transaction=False)
    gauge_reads = _read_gauges_into(pipe)
    pipe.zcard(keys.inflight_key())
    pipe.mget([keys.delivered_bucket_key(m) for m in minutes])
    pipe.mget([keys.failed_bucket_key(m) for m in minutes])
    pipe.zcount(keys.request_log_key(), now - RATE_WINDOW_SECONDS, "+inf")
    pipe.get(keys.last_delivery_key())
    pipe.lrange(keys.latency_samples_key(), 0, -1)
    pipe.hgetall(keys.fetch_pause_key())
    replies = pipe.execute()
    in_flight, delivered, failed, requests, last, latencies, retrieval = replies[gauge_reads:]
    return StatsSnapshot(
        gauges=_gauges(replies[:gauge_reads]),
        in_flight_batches=int(in_flight),
        retrieval_pause=pause_from_hash(retrieval),
        delivered_per_minute=[int(v) if v else 0 for v in delivered],
        failed_per_minute=[int(v) if v else 0 for v in failed],
        requests_last_minute=int(requests),
        last_delivery_at=float(last) if last else None,
        latency_samples=[float(v) for v in latencies],
    )
