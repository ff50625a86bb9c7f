"""The sandbox's thread-safe log of the upload requests it received, and questions about it."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

RATE_WINDOW_SECONDS = 60.0
# Records the log holds at most (about 50 MB), the oldest requests let go first: a sandbox serving a relay for
# days must not keep every record it was sent. Its totals still count every request.
MAX_HELD_RECORDS = 100_000


@dataclass(frozen=True)
class ReceivedRequest:
    """One upload request as the sandbox saw and answered it (the key only by its last 4 chars)."""

    monotonic: float
    wall_time: float
    key_suffix: str
    status: int
    record_count: int
    external_ids: tuple[str | None, ...]
    records: tuple[dict[str, Any], ...]
    record_succeeded: tuple[bool, ...] = ()
    stalled: bool = False

    @property
    def succeeded_external_ids(self) -> tuple[str | None, ...]:
        """externalIds of the records careCycle accepted (empty unless answered 200)."""
        return tuple(ext for ext, ok in zip(self.external_ids, self.record_succeeded, strict=False) if ok)

    @property
    def is_accepted(self) -> bool:
        """Whether the request used a slot of the rate window (everything but a 429 does)."""
        return self.status != 429


@dataclass
class _Totals:
    """Counts over every request since the last reset, held or let go."""

    requests: int = 0
    records_received: int = 0
    records_accepted: int = 0
    records_failed: int = 0
    stalled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, received: ReceivedRequest) -> None:
        self.requests += 1
        self.records_received += received.record_count
        if received.status == 200:
            self.records_accepted += sum(received.record_succeeded)
            self.records_failed += received.record_succeeded.count(False)
        self.stalled += received.stalled
        self.statuses[str(received.status)] += 1


class RequestLog:
    """Lock-protected log of the latest `ReceivedRequest`s (up to `max_held_records` records; a request holds at
    least one place), with totals over every request."""

    def __init__(self, max_held_records: int = MAX_HELD_RECORDS) -> None:
        self._lock = threading.Lock()
        self.max_held_records = max_held_records
        self._requests: deque[ReceivedRequest] = deque()
        self._held = 0
        self._totals = _Totals()

    def append(self, received: ReceivedRequest) -> None:
        """Record one answered request, letting the oldest go past `max_held_records`."""
        with self._lock:
            self._requests.append(received)
            self._held += _places(received)
            self._totals.add(received)
            while self._held > self.max_held_records and len(self._requests) > 1:
                self._held -= _places(self._requests.popleft())

    def reset(self) -> None:
        """Forget every request."""
        with self._lock:
            self._requests.clear()
            self._held = 0
            self._totals = _Totals()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the requests held, in arrival order."""
        with self._lock:
            return list(self._requests)

    def delivered_external_ids(self) -> Counter[str]:
        """How often each externalId succeeded in a 200-answered request."""
        counts: Counter[str] = Counter()
        for received in self.requests:
            if received.status == 200:
                counts.update(ext for ext in received.succeeded_external_ids if ext is not None)
        return counts

    def max_requests_in_any_window(self, seconds: float = RATE_WINDOW_SECONDS) -> int:
        """The most accepted (non-429) requests held that arrived within any `seconds`-long span."""
        times = sorted(received.monotonic for received in self.requests if received.is_accepted)
        best = start = 0
        for end, arrived in enumerate(times):
            # Half-open window, as the limiter: a slot used at t is free again at t + seconds.
            while arrived - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def records_for(self, external_id: str | None, limit: int = 50) -> list[dict[str, Any]]:
        """Records received (newest last) with this externalId, or the last `limit` of any when None."""
        found: list[dict[str, Any]] = []
        for received in self.requests:
            outcomes = received.record_succeeded or (False,) * len(received.records)
            for record, delivered in zip(received.records, outcomes, strict=False):
                if external_id is None or record.get("externalId") == external_id:
                    found.append({"status": received.status, "delivered": delivered, "record": record})
        return found if external_id is not None else found[-limit:]

    def stats(self) -> dict[str, Any]:
        """Totals for `GET /_sandbox/stats`: over every request since the reset, the window over those held."""
        with self._lock:
            totals = self._totals
            counts = {
                "requests": totals.requests,
                "records_received": totals.records_received,
                "records_accepted": totals.records_accepted,
                "records_failed": totals.records_failed,
                "statuses": dict(sorted(totals.statuses.items())),
                "stalled": totals.stalled,
                "requests_held": len(self._requests),
            }
        return {**counts, "max_requests_in_any_60s": self.max_requests_in_any_window(RATE_WINDOW_SECONDS)}


def _places(received: ReceivedRequest) -> int:
    """What a request takes of the log's `max_held_records`: its records, at least one."""
    return max(1, len(received.records))
