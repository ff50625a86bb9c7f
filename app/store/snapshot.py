"""Everything `/v1/stats` shows, and the gauges `/metrics` shows, each read in one pipelined round trip
whatever the number of leads."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from app.models import LeadStatus
from app.store import keys
from app.store.codec import text
from app.store.leads import counts_from_hash
from app.store.limiter import RATE_WINDOW_SECONDS
from app.store.outage import Failing, failing_from_hash
from app.store.pauses import Pause, pause_from_hash, paused_pages_from_replies, refused_forms_from_reply

# The windows of the delivered and failed counts: the last 5 minutes and the last hour.
SHORT_WINDOW_SECONDS, LONG_WINDOW_SECONDS = 300, 3600
# The statuses of a lead taken in for delivery and not delivered yet (the age gauge's leads).
WAITING_STATUSES = (LeadStatus.QUEUED, LeadStatus.SENDING, LeadStatus.RETRYING)


@dataclass(frozen=True)
class Gauges:
    """The store's state now, as `/metrics` shows it: lead counts, queue depth, oldest waiting lead, pauses, careCycle
    failing uploads, and the Meta forms whose backfill listing is refused."""

    counts: dict[LeadStatus, int]
    queue_depth: int
    oldest_waiting_received_at: float | None
    pause: Pause | None
    retrieval_pause: Pause | None
    carecycle_failing: Failing | None
    paused_pages: dict[str, str]  # page id -> why its retrieval alone is paused
    refused_forms: dict[str, str]  # form id -> why the backfill's listing of its leads is refused (no Page paused)

    def oldest_waiting_age(self, now: float) -> float:
        """Seconds since the oldest lead still waiting for delivery (queued, sending or retrying) was taken in:
        it grows while careCycle fails too, when every waiting lead is retrying and none is due yet."""
        received = self.oldest_waiting_received_at
        return round(max(0.0, now - received), 3) if received is not None else 0.0


@dataclass(frozen=True)
class WindowCounts:
    """Leads counted (delivered, or failed) in the last 5 minutes and in the last hour, to the second."""

    last5m: int
    last1h: int


@dataclass(frozen=True)
class DeliveredTotal:
    """Every lead careCycle took since the relay began counting them (`since`, epoch seconds; None: none yet),
    leads purged since included."""

    count: int
    since: float | None


@dataclass(frozen=True)
class _Window:
    """The counters a window reads: the whole minutes it spans, and the seconds of the minute at its far edge."""

    minutes: range
    seconds: range


def _window(now: float, length_seconds: int) -> _Window:
    start = now - length_seconds
    first_minute = math.ceil(start / 60)
    return _Window(range(first_minute, int(now // 60) + 1), range(math.floor(start), first_minute * 60))


@dataclass(frozen=True)
class _WindowReads:
    """The keys of one counter that both windows need (one MGET), and how to sum its replies per window."""

    short: _Window
    long: _Window

    def keys(self, minute_key: Callable[[int], str], second_key: Callable[[int], str]) -> list[str]:
        return (
            [minute_key(m) for m in self.long.minutes]
            + [second_key(s) for s in self.long.seconds]
            + [second_key(s) for s in self.short.seconds]
        )

    def counts(self, replies: Sequence[bytes | None]) -> WindowCounts:
        values = [int(v) if v else 0 for v in replies]
        minutes, rest = values[: len(self.long.minutes)], values[len(self.long.minutes) :]
        long_seconds, short_seconds = rest[: len(self.long.seconds)], rest[len(self.long.seconds) :]
        short_minutes = minutes[len(minutes) - len(self.short.minutes) :]
        return WindowCounts(last5m=sum(short_minutes) + sum(short_seconds), last1h=sum(minutes) + sum(long_seconds))


@dataclass(frozen=True)
class StatsSnapshot:
    """Raw numbers of the store at one instant; `app.ops` derives the stats from them."""

    gauges: Gauges
    in_flight_batches: int
    delivered: WindowCounts
    delivered_total: DeliveredTotal
    failed: WindowCounts
    requests_last_minute: int
    last_delivery_at: float | None
    latency_samples: list[float]  # of the deliveries in the last LONG_WINDOW_SECONDS (an hour)
    last_due_at: float | None  # when the waiting lead due last may be sent (a retry waits out its backoff)
    next_slot_at: float | None  # when the request budget frees its next slot (after careCycle's retryAfter: later)
    workers_rate_limit_per_min: int | None  # the limit running workers pace by; None while none has noted one
    backfill_catching_up: dict[str, float]  # Meta form id -> up to when its long owed span is listed so far
    # With the counts of a source: when counting by source began over leads held then, while one of those is still
    # held (they are left out of their source's counts); None once none is, or when none was.
    uncounted_before: float | None = None


def _read_gauges_into(pipe: Pipeline, now: float, source: str | None = None) -> int:
    """Queue the gauges' reads on `pipe`, the counts those of `source`'s leads when given; returns how many replies
    they take."""
    pipe.hgetall(keys.source_status_counts_key(source) if source else keys.status_counts_key())
    pipe.zcard(keys.ready_key())
    pipe.hgetall(keys.pause_key())
    pipe.hgetall(keys.fetch_pause_key())
    pipe.hgetall(keys.carecycle_failing_key())
    pipe.hgetall(keys.paused_pages_key())
    pipe.zrangebyscore(keys.paused_pages_until_key(), now, "+inf")
    pipe.hgetall(keys.refused_form_listings_key())
    for status in WAITING_STATUSES:  # each index is scored by receipt time: its first entry is its oldest
        pipe.zrange(keys.status_index_key(status.value), 0, 0, withscores=True)
    return 8 + len(WAITING_STATUSES)


def _gauges(replies: list[Any]) -> Gauges:
    counts, depth, pause, retrieval_pause, failing, paused_pages, unlapsed_pages, refused_forms, *oldest = replies
    received = [float(first[0][1]) for first in oldest if first]
    return Gauges(
        counts=counts_from_hash(counts),
        queue_depth=int(depth),
        oldest_waiting_received_at=min(received, default=None),
        pause=pause_from_hash(pause),
        retrieval_pause=pause_from_hash(retrieval_pause),
        carecycle_failing=failing_from_hash(failing),
        paused_pages=paused_pages_from_replies(paused_pages, unlapsed_pages),
        refused_forms=refused_forms_from_reply(refused_forms),
    )


def read_gauges(redis: Redis, now: float) -> Gauges:
    """Eleven cheap reads in one round trip (a scrape needs none of the stats' per-minute history)."""
    pipe = redis.pipeline(transaction=False)
    _read_gauges_into(pipe, now)
    return _gauges(pipe.execute())


def read_snapshot(redis: Redis, now: float, source: str | None = None) -> StatsSnapshot:
    """One pipeline of fixed length. A window's counts are those of its whole minutes and, for the minute it
    starts in, of that minute's seconds within it: whatever the second of the minute, a lead settled 4 min
    59 s ago is in the last 5 minutes, and one settled 5 min 1 s ago is not.
    With a `source`, the counts by status are that source's (kept apart by the transition scripts); every other
    number is of all sources."""
    windows = _WindowReads(short=_window(now, SHORT_WINDOW_SECONDS), long=_window(now, LONG_WINDOW_SECONDS))
    pipe = redis.pipeline(transaction=False)
    gauge_reads = _read_gauges_into(pipe, now, source)
    pipe.zcard(keys.inflight_key())
    pipe.mget(windows.keys(keys.delivered_bucket_key, keys.delivered_second_key))
    pipe.mget(windows.keys(keys.failed_bucket_key, keys.failed_second_key))
    pipe.hmget(keys.delivered_total_key(), keys.DELIVERED_TOTAL_COUNT_FIELD, keys.DELIVERED_TOTAL_SINCE_FIELD)
    pipe.zcount(keys.request_log_key(), now - RATE_WINDOW_SECONDS, "+inf")
    pipe.get(keys.last_delivery_key())
    pipe.lrange(keys.latency_samples_key(), 0, -1)
    pipe.zrange(keys.ready_key(), -1, -1, withscores=True)  # scored by when each lead is due
    pipe.get(keys.rate_limit_in_use_key())
    pipe.get(keys.limiter_key())
    pipe.hgetall(keys.backfill_listed_key())
    if source:
        pipe.get(keys.source_counts_since_key())
        pipe.zrange(keys.leads_index_key(), 0, 0, withscores=True)  # the oldest lead held
    replies = pipe.execute()
    in_flight, delivered, failed, total, requests, last, latencies, last_due, limit, next_slot, listed, *by_source = (
        replies[gauge_reads:]
    )
    return StatsSnapshot(
        gauges=_gauges(replies[:gauge_reads]),
        in_flight_batches=int(in_flight),
        delivered=windows.counts(delivered),
        delivered_total=DeliveredTotal(int(total[0] or 0), float(total[1]) if total[1] else None),
        failed=windows.counts(failed),
        requests_last_minute=int(requests),
        last_delivery_at=float(last) if last else None,
        latency_samples=_latencies_since(latencies, now - LONG_WINDOW_SECONDS),
        last_due_at=float(last_due[0][1]) if last_due else None,
        next_slot_at=float(next_slot) if next_slot else None,
        workers_rate_limit_per_min=_positive_int(limit),
        backfill_catching_up={text(form) or "": float(to) for form, to in listed.items()},
        uncounted_before=_uncounted_before(*by_source) if source else None,
    )


def _uncounted_before(since: bytes | None, oldest: list[tuple[bytes, float]]) -> float | None:
    """When counting by source began, while a lead taken in before then is still held; else None."""
    began = float(since) if since else 0.0
    return began if oldest and oldest[0][1] < began else None


def _positive_int(raw: bytes | None) -> int | None:
    """A count noted in Redis; None when absent or not a positive integer."""
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        return None
    return value if value > 0 else None


def _latencies_since(samples: list[bytes], since: float) -> list[float]:
    """The latencies of the deliveries made at `since` or later: an outage's slow ones no longer tell how delivery
    goes an hour on. A sample without its time (written by an older release) is not counted."""
    latencies = []
    for sample in samples:
        at, _, latency = sample.partition(b" ")
        if latency and float(at) >= since:
            latencies.append(float(latency))
    return latencies
