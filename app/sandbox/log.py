"""The sandbox's thread-safe log of every upload request it received, and questions about it."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

RATE_WINDOW_SECONDS = 60.0


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


class RequestLog:
    """Append-only, lock-protected list of `ReceivedRequest`s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []

    def append(self, received: ReceivedRequest) -> None:
        """Record one answered request."""
        with self._lock:
            self._requests.append(received)

    def reset(self) -> None:
        """Forget every request."""
        with self._lock:
            self._requests.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of every request, in arrival order."""
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
        """The most accepted (non-429) requests that arrived within any `seconds`-long span."""
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
        """Totals for `GET /_sandbox/stats`."""
        requests = self.requests
        statuses = Counter(str(received.status) for received in requests)
        ok = [received for received in requests if received.status == 200]
        return {
            "requests": len(requests),
            "records_received": sum(received.record_count for received in requests),
            "records_accepted": sum(sum(received.record_succeeded) for received in ok),
            "records_failed": sum(received.record_succeeded.count(False) for received in ok),
            "statuses": dict(sorted(statuses.items())),
            "stalled": sum(1 for received in requests if received.stalled),
            "max_requests_in_any_60s": self.max_requests_in_any_window(RATE_WINDOW_SECONDS),
        }
