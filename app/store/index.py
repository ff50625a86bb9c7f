"""The lead indexes read newest first: pages of lead ids by status, source or neither, after a position.

Every index is a sorted set scored by receipt time. A page ends at a `Position` (score and id of its
last lead); the next page starts strictly after it in (score desc, id desc) order, so leads arriving
meanwhile (newer scores) never shift or repeat later pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from app.models import Lead, LeadStatus
from app.store import keys
from app.store.codec import text

# Status and source together: the smaller index is read in chunks and filtered by the other one;
# a page stops after this many index entries and hands back a position to go on from.
SCAN_CHUNK = 500
MAX_SCANNED_PER_PAGE = 5000


@dataclass(frozen=True)
class Position:
    """Where a page ended: receipt time and id of its last lead."""

    received_at: float
    lead_id: str


@dataclass(frozen=True)
class Selection:
    """Which leads: optionally one status, one source, received at or after `since` (epoch seconds)."""

    status: LeadStatus | None = None
    source: str | None = None
    since: float | None = None

    def matches(self, lead: Lead) -> bool:
        """True when a loaded lead still fits (its status may have changed since the index was read)."""
        return (
            (self.status is None or lead.status is self.status)
            and (self.source is None or lead.source == self.source)
            and (self.since is None or lead.received_at >= self.since)
        )


@dataclass(frozen=True)
class IdPage:
    """Lead ids of one page, newest first, and where the next page starts (None: no more)."""

    ids: list[str]
    next: Position | None


class LeadIndex:
    """Reads the leads index, the per-status and the per-source indexes."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def page(self, selection: Selection, after: Position | None, limit: int) -> IdPage:
        """Up to `limit` ids matching `selection`, newest first, strictly after `after`."""
        primary, other = self._plan(selection)
        found: list[tuple[str, float]] = []
        position = after
        scanned = 0
        chunk_size = limit + 1 if other is None else SCAN_CHUNK
        while True:
            chunk = self._entries_after(primary, selection.since, position, chunk_size)
            for (lead_id, score), fits in zip(chunk, self._members_of(other, chunk), strict=True):
                position = Position(score, lead_id)
                if fits:
                    found.append((lead_id, score))
                if len(found) > limit:
                    last_id, last_score = found[limit - 1]
                    return IdPage([i for i, _ in found[:limit]], Position(last_score, last_id))
            scanned += len(chunk)
            if len(chunk) < chunk_size:
                return IdPage([i for i, _ in found], None)
            if scanned >= MAX_SCANNED_PER_PAGE:
                return IdPage([i for i, _ in found], position)

    def _plan(self, selection: Selection) -> tuple[str, str | None]:
        """The index to read and, for status and source together, the one to filter by."""
        if selection.status is None and selection.source is None:
            return keys.leads_index_key(), None
        if selection.source is None:
            assert selection.status is not None
            return keys.status_index_key(selection.status.value), None
        if selection.status is None:
            return keys.source_index_key(selection.source), None
        by_status, by_source = keys.status_index_key(selection.status.value), keys.source_index_key(selection.source)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(by_status)
        pipe.zcard(by_source)
        status_count, source_count = pipe.execute()
        return (by_status, by_source) if status_count <= source_count else (by_source, by_status)

    def _entries_after(
        self, key: str, since: float | None, after: Position | None, count: int
    ) -> list[tuple[str, float]]:
        """Up to `count` (id, score) entries of `key` after `after`, newest first, not older than `since`."""
        low: float | str = "-inf" if since is None else since
        pipe = self._redis.pipeline(transaction=False)
        if after is None:
            pipe.zrevrangebyscore(key, "+inf", low, start=0, num=count, withscores=True)
            [newest] = pipe.execute()
            return [(text(member) or "", float(score)) for member, score in newest]
        if since is not None and after.received_at < since:
            return []
        # Entries sharing the position's score (a bulk admitted at one instant) come in descending id order.
        pipe.zrevrangebyscore(key, after.received_at, after.received_at, withscores=True)
        pipe.zrevrangebyscore(key, f"({after.received_at!r}", low, start=0, num=count, withscores=True)
        ties, older = pipe.execute()
        cursor_id = after.lead_id.encode()
        entries = [(member, score) for member, score in ties if member < cursor_id] + list(older)
        return [(text(member) or "", float(score)) for member, score in entries[:count]]

    def _members_of(self, key: str | None, entries: list[tuple[str, float]]) -> list[bool]:
        """Per entry, whether its id is in the sorted set `key` (all True without one)."""
        if key is None or not entries:
            return [True] * len(entries)
        pipe = self._redis.pipeline(transaction=False)
        for lead_id, _ in entries:
            pipe.zscore(key, lead_id)
        return [score is not None for score in pipe.execute()]
