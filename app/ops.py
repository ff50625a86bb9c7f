"""Operations behind `/v1/stats`, the lead list, retries, the audit trail, the dashboard and the CLI.

Reads are cheap (a fixed number of round trips, indexes instead of scans); every action an operator
takes is written to the audit trail under the actor's name (an ops token's name, or `cli:<user>`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.clock import Clock
from app.models import MAX_BATCH_RECORDS, RETRYABLE_STATUSES, Lead, LeadStatus
from app.store import LeadNotFoundError, Store
from app.store.audit import AuditEntry
from app.store.index import Position, Selection
from app.store.limiter import RATE_WINDOW_SECONDS
from app.store.pauses import Pause
from app.store.retries import MAX_REQUEUE_BATCH, Requeued, RequeueOutcome
from app.store.snapshot import StatsSnapshot, read_snapshot

logger = logging.getLogger(__name__)

RETRY_LEAD_ACTION = "retry_lead"
RETRY_LEADS_ACTION = "retry_leads"


@dataclass(frozen=True)
class StatsQuery:
    """What computing stats needs: the store, the configured limit (shown while no worker has noted the limit it
    runs with) and the time; and, to narrow the counts by status to one source, its slug and the configured
    sources' slugs (a source neither configured nor ever seen is refused, not answered with zeros)."""

    store: Store
    rate_limit_per_min: int
    now: float
    source: str | None = None
    configured_sources: frozenset[str] = frozenset()


# What a source stats are asked of must be, said to the operator who named another.
UNKNOWN_SOURCE_EXPECTED = "unknown: expected a configured source (GET /v1/sources) or one that leads came from"


class UnknownStatsSourceError(LookupError):
    """Stats asked of a source that is not configured and never had a lead: a typo, whose counts of zero would
    read as a quiet source."""

    def __init__(self, source: str) -> None:
        super().__init__(f"no configured source is {source!r}, and no lead came from one of that name")
        self.source = source


def collect_stats(query: StatsQuery) -> dict[str, Any]:
    """The numbers of `/v1/stats`: one pipelined round trip to Redis, whatever the number of leads (and, for a source
    not configured, a read first of whether a lead ever came from it).

    Counts are of the leads the relay currently holds: a lead purged after the retention period leaves its status's
    count (`deliveredTotal` keeps counting it). `readAt` is the relay's time they were read at, for a client to
    measure ages by the relay's clock rather than its own. With `query.source`, the counts by status are that
    source's (`countsSource` says so) and every other number stays of all sources; raises `UnknownStatsSourceError`
    for a source never known.
    """
    source = query.source
    if source is not None and source not in query.configured_sources and not query.store.leads.has_had_source(source):
        raise UnknownStatsSourceError(source)
    snap, now = read_snapshot(query.store.redis, query.now, source), query.now
    depth, pause, retrieval_pause = snap.gauges.queue_depth, snap.gauges.pause, snap.gauges.retrieval_pause
    failing = snap.gauges.carecycle_failing
    blocked_by = _drain_blocked_by(snap)
    limit = snap.workers_rate_limit_per_min or query.rate_limit_per_min
    ceiling_per_second = limit * MAX_BATCH_RECORDS / RATE_WINDOW_SECONDS
    return {
        "counts": {status.value: snap.gauges.counts[status] for status in LeadStatus},
        "countsSource": source,
        "countsSourceSince": snap.uncounted_before,
        "queueDepth": depth,
        "inFlightBatches": snap.in_flight_batches,
        "oldestQueuedAgeSeconds": snap.gauges.oldest_waiting_age(now),
        "delivered": {"last5m": snap.delivered.last5m, "last1h": snap.delivered.last1h},
        "deliveredTotal": snap.delivered_total.count,
        "deliveredTotalSince": snap.delivered_total.since,
        "failed": {"last5m": snap.failed.last5m, "last1h": snap.failed.last1h},
        "rateBudget": {
            "limitPerMinute": limit,
            "limitFrom": "workers" if snap.workers_rate_limit_per_min else "settings",
            "usedLastMinute": snap.requests_last_minute,
        },
        "estimatedDrainSeconds": None if blocked_by else _drain_seconds(snap, ceiling_per_second, now),
        "estimatedDrainBlockedBy": blocked_by,
        "paused": pause is not None,
        "pause": _pause_body(pause),
        "careCycleFailing": None
        if failing is None
        else {"since": failing.since, "lastAt": failing.last_at, "reason": failing.reason},
        "retrievalPaused": retrieval_pause is not None,
        "retrievalPause": _pause_body(retrieval_pause),
        "retrievalPausedPages": dict(sorted(snap.gauges.paused_pages.items())),
        "retrievalRefusedForms": dict(sorted(snap.gauges.refused_forms.items())),
        "backfillCatchingUp": dict(sorted(snap.backfill_catching_up.items())),
        "lastDeliveryAt": snap.last_delivery_at,
        "latencySeconds": _latency_percentiles(sorted(snap.latency_samples)),
        "readAt": now,
    }


def _drain_blocked_by(snap: StatsSnapshot) -> str | None:
    """What keeps the waiting leads from leaving, so that no time can be given for it: no worker running (none noted
    its rate limit within its last ten ticks; a pause or a failing spell is then not probed either), delivery paused,
    or careCycle failing; None while leads leave."""
    if snap.workers_rate_limit_per_min is None:
        return "noWorker"
    if snap.gauges.pause is not None:
        return "paused"
    if snap.gauges.carecycle_failing is not None:
        return "careCycleFailing"
    return None


def _drain_seconds(snap: StatsSnapshot, ceiling_per_second: float, now: float) -> int:
    """How long the waiting leads take to send at the rate-limit ceiling from the next free request slot (after
    careCycle's retryAfter, while it holds every request), and at least until the last of them is due: a lead
    retrying after a backoff is not sent before its time, however short the queue."""
    depth = snap.gauges.queue_depth
    if not depth:
        return 0
    slot_in = 0.0 if snap.next_slot_at is None else max(0.0, snap.next_slot_at - now)
    last_due_in = 0.0 if snap.last_due_at is None else snap.last_due_at - now
    return max(math.ceil(slot_in + depth / ceiling_per_second), math.ceil(last_due_in))


def _pause_body(pause: Pause | None) -> dict[str, Any] | None:
    return None if pause is None else {"reason": pause.reason, "since": pause.since, "nextProbeAt": pause.next_probe_at}


def _latency_percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None}
    return {"p50": round(_percentile(samples, 0.50), 3), "p95": round(_percentile(samples, 0.95), 3)}


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


class LeadNotRetryableError(Exception):
    """A lead that an operator may not re-queue: not `rejected`/`dead`/`duplicate`, or with no record to send."""

    def __init__(self, lead_id: str, status: LeadStatus | None, reason: str) -> None:
        super().__init__(reason)
        self.lead_id = lead_id
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Refusal:
    """Why a lead without a record was not made ready to send by a second normalization.

    `reason` is said in full to the operator who retried the lead alone; `kind` is the same reason with nothing
    particular to the lead (no lead's id, no field's value: the names of the fields at fault at most), by which a
    bulk retry counts the leads it left. Without a `kind`, the reason is one already.
    """

    reason: str
    kind: str = ""

    @property
    def group(self) -> str:
        """What a bulk retry counts this refusal under."""
        return self.kind or self.reason


@dataclass(frozen=True)
class BulkRetry:
    """What a bulk retry did: how many matching leads it re-queued, and how many it left as they were, by why."""

    requeued: int
    skipped_reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """How many matching leads were left as they were."""
        return sum(self.skipped_reasons.values())


@dataclass
class _BulkTally:
    """What a bulk retry has done so far: the leads it re-queued, and those it left by why."""

    requeued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class LeadPage:
    """One page of the lead list, newest first, and where the next one starts (None: the last page)."""

    leads: list[Lead]
    next: Position | None


class Operator:
    """Operator queries and actions over the store; `wake_delivery` starts delivery after a re-queue.

    `resubmit` (see `app.resubmit`) gives a lead that has no record, only a submission normalization refused,
    a second normalization when it is retried: None when it now has a record, else why it has none.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        wake_delivery: Callable[[], object],
        resubmit: Callable[[str], Refusal | None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wake = wake_delivery
        self._resubmit = resubmit

    def list_leads(self, selection: Selection, after: Position | None, limit: int) -> LeadPage:
        """Leads matching `selection`, newest first, after `after` (from the indexes, never a scan)."""
        page = self._store.index.page(selection, after, limit)
        leads = [lead for lead in self._store.leads.get_many(page.ids) if selection.matches(lead)]
        return LeadPage(leads, page.next)

    def retry_lead(self, lead_id: str, actor: str) -> Lead:
        """Re-queue one `rejected`, `dead` or `duplicate` lead; raises `LeadNotFoundError` or `LeadNotRetryableError`.

        A `duplicate` is sent although its person came shortly before: the operator's decision, taken when the
        earlier lead its event names never reached careCycle (rejected or dead since). Audited when it changed the
        lead: re-queued (count 1), or made a `duplicate` by its second normalization (count 0)."""
        now = self._clock.now()
        [result] = self._store.retries.requeue([lead_id], now, _retry_detail(actor), duplicates=True)
        if result.outcome is RequeueOutcome.NO_RECORD and self._resubmit is not None and result.previous in _REFUSED:
            refusal = self._resubmit(lead_id)
            if refusal is not None:
                reason, current = refusal.reason, self._store.leads.get(lead_id).status
                if current in _TAKEN_BY_ANOTHER_RETRY:
                    reason = f"a {current.value} lead cannot be retried (another retry took it meanwhile)"
                elif current is LeadStatus.DUPLICATE:
                    # Normalized again, the lead named a person seen within the window: the retry settled it.
                    self._audit(AuditEntry(now, RETRY_LEAD_ACTION, actor, 0, lead_id=lead_id))
                raise LeadNotRetryableError(lead_id, current, reason)
            [result] = self._store.retries.requeue([lead_id], now, _retry_detail(actor))
        if result.outcome is RequeueOutcome.MISSING:
            raise LeadNotFoundError(lead_id)
        if result.outcome is RequeueOutcome.NOT_RETRYABLE:
            status = result.previous.value if result.previous else "unknown"
            raise LeadNotRetryableError(lead_id, result.previous, f"a {status} lead cannot be retried")
        if result.outcome is RequeueOutcome.NO_RECORD:
            raise LeadNotRetryableError(lead_id, result.previous, _no_record_reason(result.previous))
        self._audit(AuditEntry(now, RETRY_LEAD_ACTION, actor, 1, lead_id=lead_id))
        self._wake()
        return self._store.leads.get(lead_id)

    def retry_matching(self, selection: Selection, actor: str) -> BulkRetry:
        """Re-queue every lead matching `selection` (its status `rejected` or `dead`); says how many, and how many
        matching leads it left as they were, by why.

        Pages through the status index in bounded batches, each re-queued by one atomic script call. Should a
        batch fail (Redis lost mid-way), the audit entry still records the leads already re-queued.
        """
        if selection.status not in RETRYABLE_STATUSES:
            raise ValueError("only rejected or dead leads can be retried")
        now = self._clock.now()
        tally, after = _BulkTally(), None
        entry = functools.partial(AuditEntry, now, RETRY_LEADS_ACTION, actor, filter=_filter_of(selection))
        try:
            while True:
                page = self._store.index.page(selection, after, MAX_REQUEUE_BATCH)
                self._retry_page(page.ids, now, actor, tally)
                if page.next is None:
                    break
                after = page.next
        except BaseException as exc:
            if tally.requeued:
                # Those leads stay queued (the ticker wakes delivery): the trail and whoever reads the error say so.
                exc.add_note(f"matching leads re-queued before it stopped: {tally.requeued} (audited)")
                self._audit(entry(tally.requeued))
            raise
        self._audit(entry(tally.requeued))
        if tally.requeued:
            self._wake()
        return BulkRetry(tally.requeued, dict(tally.skipped))

    def _retry_page(self, lead_ids: list[str], now: float, actor: str, tally: _BulkTally) -> None:
        """Re-queue one page of a bulk retry, normalizing again the refused submissions of leads found without a
        record; counts in `tally` the leads re-queued as each step ends (a second normalization may stop the retry:
        a shell without the key), and the others by why."""
        results = self._store.retries.requeue(lead_ids, now, _retry_detail(actor))
        tally.requeued += sum(1 for result in results if result.outcome in _TAKEN_BACK)
        ready: list[str] = []
        for result in results:
            if result.outcome is RequeueOutcome.NO_RECORD and self._resubmit is not None:
                refusal = self._resubmit(result.lead_id)
                if refusal is None:
                    ready.append(result.lead_id)
                else:
                    tally.skipped[refusal.group] += 1
            elif result.outcome not in _TAKEN_BACK:
                tally.skipped[_left_because(result)] += 1
        again = self._store.retries.requeue(ready, now, _retry_detail(actor)) if ready else []
        tally.requeued += sum(1 for result in again if result.outcome in _TAKEN_BACK)
        tally.skipped.update(_left_because(result) for result in again if result.outcome not in _TAKEN_BACK)

    def _audit(self, entry: AuditEntry) -> None:
        """Append to the audit trail; when the store refuses, the action is logged as an error instead."""
        try:
            self._store.audit.append(entry)
        except Exception:
            logger.error(
                "operator action not written to the audit trail: %s by %s, %d leads",
                entry.action,
                entry.actor,
                entry.count,
                extra={"lead_id": entry.lead_id, "filter": dict(entry.filter)},
            )
            raise

    def audit_trail(self, limit: int, offset: int = 0) -> list[AuditEntry]:
        """`limit` operator actions, newest first, after the newest `offset`."""
        return self._store.audit.recent(limit, offset)


# Where a lead without a record may hold a submission normalization refused, to normalize again.
_REFUSED = RETRYABLE_STATUSES
# What a retry does to a lead it takes back: queued for delivery, or (Meta, no record yet) for retrieval.
_TAKEN_BACK = frozenset({RequeueOutcome.REQUEUED, RequeueOutcome.REFETCHING})
# Where a lead without a record can only be when another operator's retry normalized and re-queued it.
_TAKEN_BY_ANOTHER_RETRY = frozenset({LeadStatus.QUEUED, LeadStatus.SENDING, LeadStatus.RETRYING, LeadStatus.DELIVERED})


def _left_because(result: Requeued) -> str:
    """Why a bulk retry left a lead it found in the index as it was (nothing particular to the lead)."""
    if result.outcome is RequeueOutcome.MISSING:
        return "purged meanwhile"
    if result.outcome is RequeueOutcome.NO_RECORD:
        return _no_record_reason(result.previous)
    return "another retry took it meanwhile"


def _no_record_reason(status: LeadStatus | None) -> str:
    """Why a lead has no record to send: refused before it became one; or, a duplicate, its record was deleted
    after the record retention (as earlier versions did, keeping it no longer than a delivered lead's)."""
    if status is LeadStatus.DUPLICATE:
        return "the lead has no careCycle record left to send: it was deleted after the record retention"
    return "the lead has no careCycle record to send: it was rejected before it became one (see its events)"


def _retry_detail(actor: str) -> str:
    return f"retried by {actor}"


def _filter_of(selection: Selection) -> dict[str, Any]:
    found: dict[str, Any] = {"status": selection.status.value if selection.status else None}
    if selection.source is not None:
        found["source"] = selection.source
    if selection.since is not None:
        found["since"] = selection.since
    return found
