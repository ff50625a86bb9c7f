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
# The statuses of a lead taken in for delivery and not delivered yet (the age gauge's leads).
WAITING_STATUSES = (LeadStatus.QUEUED, LeadStatus.SENDING, LeadStatus.RETRYING)


@dataclass(frozen=True)
class Gauges:
    """The store's state now, as `/metrics` shows it: lead counts, queue depth, oldest waiting lead, pauses."""

    counts: dict[LeadStatus, int]
    queue_depth: int
    oldest_waiting_received_at: float | None
    pause: Pause | None
    retrieval_pause: Pause | None

    def oldest_waiting_age(self, now: float) -> float:
        """Seconds since the oldest lead still waiting for delivery (queued, sending or retrying) was taken in:
        it grows while careCycle fails too, when every waiting lead is retrying and none is due yet."""
        received = self.oldest_waiting_received_at
        return round(max(0.0, now - received), 3) if received is not None else 0.0


@dataclass(frozen=True)
class StatsSnapshot:
    """Raw numbers of the store at one instant; `app.ops` derives the stats from them."""

    gauges: Gauges
    in_flight_batches: int
    delivered_per_minute: list[int]
    failed_per_minute: list[int]
    requests_last_minute: int
    last_delivery_at: float | None
    latency_samples: list[float]


def _read_gauges_into(pipe: Pipeline) -> int:
    """Queue the gauges' reads on `pipe`; returns how many replies they take."""
    pipe.hgetall(keys.status_counts_key())
    pipe.zcard(keys.ready_key())
    pipe.hgetall(keys.pause_key())
    pipe.hgetall(keys.fetch_pause_key())
    for status in WAITING_STATUSES:  # each index is scored by receipt time: its first entry is its oldest
        pipe.zrange(keys.status_index_key(status.value), 0, 0, withscores=True)
    return 4 + len(WAITING_STATUSES)


def _gauges(replies: list[Any]) -> Gauges:
    counts, depth, pause, retrieval_pause, *oldest_by_status = replies
    received = [float(oldest[0][1]) for oldest in oldest_by_status if oldest]
    return Gauges(
        counts=counts_from_hash(counts),
        queue_depth=int(depth),
        oldest_waiting_received_at=min(received, default=None),
        pause=pause_from_hash(pause),
        retrieval_pause=pause_from_hash(retrieval_pause),
    )


def read_gauges(redis: Redis) -> Gauges:
    """Seven cheap reads in one round trip (a scrape needs none of the stats' per-minute history)."""
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
    replies = pipe.execute()
    in_flight, delivered, failed, requests, last, latencies = replies[gauge_reads:]
    return StatsSnapshot(
        gauges=_gauges(replies[:gauge_reads]),
        in_flight_batches=int(in_flight),
        delivered_per_minute=[int(v) if v else 0 for v in delivered],
        failed_per_minute=[int(v) if v else 0 for v in failed],
        requests_last_minute=int(requests),
        last_delivery_at=float(last) if last else None,
        latency_samples=[float(v) for v in latencies],
    )
