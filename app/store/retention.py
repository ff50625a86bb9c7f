"""Retention: purging records and then whole leads a configured time after they reached a final status.

The transition scripts enter every lead reaching a final status in two sorted sets scored by that
time; a purge pass reads only the due entries of those sets (no scan of all leads). Records (or the refused
submission a lead keeps instead) of `rejected` and `dead` leads are kept until the lead itself expires, so an
operator can retry them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis import Redis

from app.store import keys
from app.store.scripts import Scripts

DEFAULT_RECORD_RETENTION_SECONDS = 24 * 3600
DEFAULT_RETENTION_SECONDS = 30 * 86400
PURGE_INTERVAL_SECONDS = 60
PURGE_CHUNK_LEADS = 500
MAX_PURGE_CHUNKS_PER_PASS = 20


@dataclass(frozen=True)
class Retention:
    """How long records and lead metadata are kept after a lead reached a final status."""

    record_seconds: int = DEFAULT_RECORD_RETENTION_SECONDS
    lead_seconds: int = DEFAULT_RETENTION_SECONDS


@dataclass(frozen=True)
class PurgeReport:
    """What one purge pass deleted."""

    records: int
    leads: int


class RetentionStore:
    """Runs purge passes over the retention sets, at most one per interval across all workers."""

    def __init__(self, redis: Redis, scripts: Scripts, retention: Retention) -> None:
        self._redis = redis
        self._scripts = scripts
        self.retention = retention

    def purge_if_due(self, now: float, interval_seconds: int = PURGE_INTERVAL_SECONDS) -> PurgeReport | None:
        """Run a purge pass unless one ran in the last `interval_seconds` (any worker); None when skipped.

        The lock is never released: its expiry is what spaces the passes. A pass outliving it may overlap
        the next one, which is harmless: each step is one atomic script over the due entries.
        """
        if not self._redis.set(keys.purge_lock_key(), uuid.uuid4().hex, nx=True, ex=interval_seconds):
            return None
        return self.purge(now)

    def purge(self, now: float) -> PurgeReport:
        """Delete what is due at `now`, in bounded steps (at most a few thousand leads per pass)."""
        records = leads = 0
        for _ in range(MAX_PURGE_CHUNKS_PER_PASS):
            step_records, step_leads, more = self._purge_step(now)
            records += step_records
            leads += step_leads
            if not more:
                break
        return PurgeReport(records, leads)

    def _purge_step(self, now: float) -> tuple[int, int, bool]:
        """One chunk of each stage: records and leads deleted, and whether a stage read a full chunk (more may
        be due, even when it deleted nothing: the records of failed leads are kept)."""
        retention = self.retention
        records, leads, full = self._scripts.purge_retained(
            keys=[
                keys.retained_records_key(),
                keys.retained_leads_key(),
                keys.status_counts_key(),
                keys.leads_index_key(),
                keys.sources_seen_key(),
                keys.source_counts_since_key(),
            ],
            args=[
                repr(now - retention.record_seconds),
                repr(now - retention.lead_seconds),
                PURGE_CHUNK_LEADS,
                keys.LEAD_KEY_PREFIX,
                keys.LEAD_EVENTS_SUFFIX,
            ],
        )
        return int(records), int(leads), int(full) == 1
