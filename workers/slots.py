"""Waiting for a careCycle request slot while a batch is in flight: its lease kept, the wait slept in pieces."""

from __future__ import annotations

from app.clock import Clock
from app.store import Store
from app.store.limiter import Slot


class SlotWaiter:
    """Waits for a slot of the shared request budget on behalf of a batch this worker holds."""

    def __init__(self, store: Store, clock: Clock, lease_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._lease = lease_seconds

    def wait(self, batch_id: str, *, despite_pause: bool = False) -> bool:
        """Wait for a request slot while keeping the batch in flight; False if delivery paused (unless
        `despite_pause`) or the batch is no longer this worker's.

        The wait (careCycle's `retryAfter` can be a minute or more) is slept in pieces of a third of the
        visibility timeout, the batch's lease pushed out before each, so that no other worker takes the
        batch for lost and sends it too.
        """
        while True:
            now = self._clock.now()
            if not despite_pause and self._store.pause.get() is not None:
                return False
            if not self._store.batches.extend(batch_id, now + self._lease):
                return False
            slot = self._store.budget.reserve(now)
            if isinstance(slot, Slot):
                return True
            self._clock.sleep(min(slot, self._lease / 3))
