"""Prometheus metrics of the relay, served at `/metrics`.

Two kinds, both correct with several gunicorn processes and any number of workers on other hosts:
- per-process web counters (intake) use prometheus_client, in multiprocess mode when
  `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py cleans up after exited processes);
- shared state (queue, pause, delivery counters and histograms written by workers) is read from
  Redis at scrape time by `StoreCollector`, so every web process reports the same truth.
"""

from __future__ import annotations

import functools
import logging
import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

from app.models import LeadStatus
from app.store import Store
from app.store.metrics import Histogram
from app.store.snapshot import read_gauges

logger = logging.getLogger(__name__)

INTAKE_LEADS = Counter(
    "leadrelay_intake_leads",
    "Submissions to the web tier, by source and outcome (accepted, invalid: a lead not valid, or a request refused "
    "whole before any lead is read; throttled, rejected, repeated, spam, test, duplicate, unauthorized; Meta leadgen "
    "changes no source took: source @meta, unrouted or invalid).",
    ["source", "outcome"],
)
# The intake counter's source for Meta leadgen changes that reached no source: no slug holds "@".
META_SKIPPED_SOURCE = "@meta"
# Taken in for delivery, or (Meta) for retrieval first: both count as accepted.
_ACCEPTED = frozenset({LeadStatus.QUEUED, LeadStatus.FETCHING})


def record_intake(source: str, outcome: str, count: int = 1) -> None:
    """Count `count` submissions of a source that ended in `outcome`.

    A count is never worth a lead: when the multiprocess metrics folder cannot be written (removed, or
    read-only), the submission, often stored already, is answered as usual and the count is lost, with a warning.
    """
    if not count:
        return
    try:
        _intake_counter(source, outcome).inc(count)
    except OSError as exc:
        logger.warning("an intake count was lost: the metrics folder cannot be written (%s)", type(exc).__name__)


def record_admitted(source: str, status: LeadStatus | None, repeated: bool) -> None:
    """Count one stored submission: `repeated`, `accepted`, or the status it is held in (spam, rejected, ...)."""
    record_intake(source, intake_outcome(status, repeated))


def record_meta_skipped(unrouted: int, unreadable: int) -> None:
    """Count the leadgen changes of a notification that became no lead: for a page and form no facebook source
    lists (`unrouted`), or that could not be read (`invalid`, an unreadable entry counted as one). Meta does not
    announce them again, so on-call must see them beside the leads taken."""
    record_intake(META_SKIPPED_SOURCE, "unrouted", unrouted)
    record_intake(META_SKIPPED_SOURCE, "invalid", unreadable)


def intake_outcome(status: LeadStatus | None, repeated: bool) -> str:
    """The intake counter's outcome of a stored submission (a repeat of a lead since purged has no status)."""
    if repeated or status is None:
        return "repeated"
    return "accepted" if status in _ACCEPTED else status.value


def hand_over_admitted(store: Store, admitted: Iterable[tuple[str, LeadStatus]]) -> None:
    """Count leads taken in where no `/metrics` is served (a worker's Meta backfill), by (source, status): the
    next web process to serve a scrape counts them as its own intake (`take_handed_over`). A count Redis refuses
    is lost, never the work that made it: the leads are stored already, and the caller goes on with them."""
    counts = Tally((source, intake_outcome(status, False)) for source, status in admitted)
    if not counts:
        return
    try:
        store.intake_handover.add(counts)
    except RedisError as exc:
        logger.warning(
            "Redis did not answer: %d leads taken in are missing from leadrelay_intake_leads_total (%s)",
            counts.total(),
            type(exc).__name__,
        )


def take_handed_over(store: Store) -> None:
    """Add the intake counts handed over by workers to this process's counter, each once across all processes.
    While Redis does not answer they wait for a later scrape (`leadrelay_store_up` says why)."""
    try:
        taken = store.intake_handover.take()
    except RedisError:
        return
    for (source, outcome), count in taken.items():
        record_intake(source, outcome, count)


@functools.cache
def _intake_counter(source: str, outcome: str) -> Counter:
    """The labelled child of a (configured source, outcome) pair, looked up once instead of per lead."""
    return INTAKE_LEADS.labels(source=source, outcome=outcome)


class StoreCollector(Collector):
    """Metrics read from Redis at scrape time: the same for every web process."""

    def __init__(self, store: Store, now: float) -> None:
        self._store = store
        self._now = now

    def collect(self) -> Iterator[Metric]:
        store = self._store
        try:
            gauges = read_gauges(store.redis, self._now)
            delivery = store.metrics.read()
        except RedisError as exc:
            # The scrape still answers with each process's own counters: a Redis outage shows as this gauge,
            # not as a failed scrape that loses the intake counts too.
            logger.warning("metrics read from Redis are missing from a scrape: %s", type(exc).__name__)
            yield _store_up(0.0)
            return
        yield _store_up(1.0)
        by_status = GaugeMetricFamily("leadrelay_leads", "Leads held, by status.", labels=["status"])
        for status in LeadStatus:
            by_status.add_metric([status.value], gauges.counts[status])
        yield by_status
        yield GaugeMetricFamily("leadrelay_queue_depth", "Leads waiting for delivery.", value=gauges.queue_depth)
        yield GaugeMetricFamily(
            "leadrelay_oldest_queued_age_seconds",
            "Seconds since the oldest lead not delivered yet (queued, sending or retrying) was taken in.",
            value=gauges.oldest_waiting_age(self._now),
        )
        paused = 1.0 if gauges.pause is not None else 0.0
        yield GaugeMetricFamily("leadrelay_delivery_paused", "1 while delivery is paused (401/403/404).", value=paused)
        failing = 1.0 if gauges.carecycle_failing is not None else 0.0
        yield GaugeMetricFamily(
            "leadrelay_carecycle_failing",
            "1 from careCycle's first failed upload (5xx, timeout, no connection) until it takes one again.",
            value=failing,
        )
        retrieval_paused = 1.0 if gauges.retrieval_pause is not None else 0.0
        yield GaugeMetricFamily(
            "leadrelay_retrieval_paused",
            "1 while Meta lead retrieval is paused (the Graph API refused the token, or did not answer in time).",
            value=retrieval_paused,
        )
        yield GaugeMetricFamily(
            "leadrelay_retrieval_paused_pages",
            "Meta Pages whose lead retrieval alone is paused (the token lacks a permission for their leads).",
            value=len(gauges.paused_pages),
        )
        yield GaugeMetricFamily(
            "leadrelay_retrieval_refused_forms",
            "Meta lead forms whose backfill listing Graph refuses for a permission, no Page of theirs paused alone: "
            "their leads are taken in only as their webhooks come.",
            value=len(gauges.refused_forms),
        )
        yield _counter(
            "leadrelay_carecycle_requests",
            "Upload requests to careCycle, by outcome (ok, rate_limited, server_error, connection_error, timeout,"
            " ...).",
            delivery.carecycle_requests,
        )
        yield _counter(
            "leadrelay_delivery_lead_outcomes",
            "Leads settled after an upload, by resulting status (delivered, rejected, retrying, dead, queued).",
            delivery.lead_outcomes,
        )
        yield _histogram("leadrelay_batch_size_records", "Records per upload request.", delivery.batch_size)
        yield _histogram(
            "leadrelay_delivery_latency_seconds",
            "Time from intake to careCycle's acceptance, per delivered lead.",
            delivery.delivery_latency_seconds,
        )


def _store_up(value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "leadrelay_store_up",
        "1 when Redis answered the reads of this scrape; 0: the metrics read from it are missing.",
        value=value,
    )


def _counter(name: str, documentation: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["outcome"])
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    buckets = [(_le(bound), float(count)) for bound, count in histogram.buckets]
    family.add_metric([], buckets, histogram.total)
    return family


def _le(bound: str) -> str:
    """Bucket bounds spelled as prometheus_client spells its own ("5.0", "+Inf")."""
    return bound if bound == "+Inf" else str(floatToGoString(float(bound)))  # type: ignore[no-untyped-call]


def render_metrics(store: Store, now: float) -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric, and its content type."""
    take_handed_over(store)  # before the process's counters are read, so this scrape shows them
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)  # type: ignore[no-untyped-call]
    else:
        process_registry = REGISTRY
    shared = CollectorRegistry(auto_describe=False)
    shared.register(StoreCollector(store, now))
    return generate_latest(process_registry) + generate_latest(shared), CONTENT_TYPE_LATEST
