"""Delivery metrics kept in Redis: workers on any host add to them; `/metrics` reads them at scrape time. Also
the intake counts workers make, handed over to the web tier's own intake counter.

Counters are hashes of label -> count. Histograms are hashes of bucket upper bound -> count of
observations in that bucket (not cumulative), plus `sum` and `count` fields.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from redis import Redis

from app.store import keys
from app.store.codec import text
from app.store.scripts import Scripts

BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 150, 199, 200)
LATENCY_BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
# How long the counts one take moved stay under its token: long enough for the web process to ask again at its next
# scrape, when the answer to the take was lost.
HANDOVER_RECEIPT_SECONDS = 600


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets as Prometheus wants them, with the sum and count of observations."""

    buckets: list[tuple[str, int]]
    total: float
    count: int


class DeliveryMetrics:
    """Adds to and reads the delivery counters and histograms."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def record_upload(
        self, outcome: str, records: int, lead_outcomes: Iterable[str], latencies: Sequence[float]
    ) -> None:
        """One upload request: its outcome, its size, what became of its leads, delivered leads' latency."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(keys.metrics_key("carecycle_requests"), outcome, 1)
        _observe(pipe, "batch_size", BATCH_SIZE_BUCKETS, [float(records)])
        for status, count in Counter(lead_outcomes).items():
            pipe.hincrby(keys.metrics_key("lead_outcomes"), status, count)
        _observe(pipe, "delivery_latency_seconds", LATENCY_BUCKETS_SECONDS, latencies)
        pipe.execute()

    def read(self) -> DeliveryReadings:
        """Every delivery counter and histogram, in one round trip (what a scrape shows)."""
        pipe = self._redis.pipeline(transaction=False)
        for name in ("carecycle_requests", "lead_outcomes", "batch_size", "delivery_latency_seconds"):
            pipe.hgetall(keys.metrics_key(name))
        requests, outcomes, sizes, latencies = pipe.execute()
        return DeliveryReadings(
            carecycle_requests=_counter(requests),
            lead_outcomes=_counter(outcomes),
            batch_size=_histogram(sizes, BATCH_SIZE_BUCKETS),
            delivery_latency_seconds=_histogram(latencies, LATENCY_BUCKETS_SECONDS),
        )


class IntakeHandover:
    """Intake counts made where no `/metrics` is served (a worker's Meta backfill takes in leads too), handed to
    the web tier: the first web process to serve a scrape takes them into its own intake counter. So each is
    counted once in `leadrelay_intake_leads_total`, summed across replicas like the webhook's counts, never
    shown by every replica as a count read from Redis would be."""

    def __init__(self, redis: Redis, scripts: Scripts, new_token: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self._redis = redis
        self._scripts = scripts
        self._new_token = new_token
        self._lock = threading.Lock()  # a process serves scrapes on several threads: one take at a time
        self._unanswered: str | None = None  # the token of a take whose answer never came

    def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Hand over `counts`, by (source, outcome)."""
        pipe = self._redis.pipeline(transaction=False)
        for (source, outcome), count in counts.items():
            if count:
                pipe.hincrby(keys.intake_handover_key(), f"{outcome}:{source}", count)
        pipe.execute()

    def take(self) -> dict[tuple[str, str], int]:
        """Every count handed over since the last take, by (source, outcome), and none of them again.

        Redis may run a take whose answer is lost (a dropped connection, which the client sends again; a timeout):
        the counts it moved wait under its token, which the next take asks for again before any newer count."""
        with self._lock:
            token = self._unanswered or self._new_token()
            self._unanswered = token
            raw = self._scripts.take_intake_handover(
                keys=[keys.intake_handover_key(), keys.intake_handover_receipt_key(token)],
                args=[HANDOVER_RECEIPT_SECONDS],
            )
            self._unanswered = None
        taken: dict[tuple[str, str], int] = {}
        for field, count in zip(raw[::2], raw[1::2], strict=True):
            outcome, _, source = (text(field) or "").partition(":")
            taken[(source, outcome)] = int(count)
        return taken


@dataclass(frozen=True)
class DeliveryReadings:
    """The delivery metrics at one instant: counters as label -> count, histograms cumulative."""

    carecycle_requests: dict[str, int]
    lead_outcomes: dict[str, int]
    batch_size: Histogram
    delivery_latency_seconds: Histogram


def _counter(raw: dict[bytes, bytes]) -> dict[str, int]:
    """Label -> count of a counter hash."""
    return {text(k) or "": int(v) for k, v in raw.items()}


def _histogram(raw_hash: dict[bytes, bytes], bounds: Sequence[float]) -> Histogram:
    """A histogram hash as cumulative buckets."""
    raw = {text(k) or "": text(v) or "0" for k, v in raw_hash.items()}
    running, buckets = 0, []
    for bound in bounds:
        running += int(raw.get(_label(bound), 0))
        buckets.append((_label(bound), running))
    count = int(raw.get("count", 0))
    buckets.append(("+Inf", count))
    return Histogram(buckets, float(raw.get("sum", 0)), count)


def _label(bound: float) -> str:
    return f"{bound:g}"


def _observe(pipe: object, name: str, bounds: Sequence[float], values: Sequence[float]) -> None:
    if not values:
        return
    key = keys.metrics_key(name)
    per_bucket: Counter[str] = Counter()
    for value in values:
        index = bisect.bisect_left(bounds, value)
        per_bucket[_label(bounds[index]) if index < len(bounds) else "+Inf"] += 1
    for label, count in per_bucket.items():
        pipe.hincrby(key, label, count)  # type: ignore[attr-defined]
    pipe.hincrbyfloat(key, "sum", sum(values))  # type: ignore[attr-defined]
    pipe.hincrby(key, "count", len(values))  # type: ignore[attr-defined]
