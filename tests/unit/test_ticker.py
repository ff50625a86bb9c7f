"""The workers' ticker finds work whose job was lost: it must survive any one failing step."""

from __future__ import annotations

from tests.support import wait_until
from workers.runner import DeliveryTicker


class FailingTicker(DeliveryTicker):
    """A ticker whose delivery step always fails, counting the steps it reaches."""

    def __init__(self) -> None:
        super().__init__(context=None, interval_seconds=0.01)  # type: ignore[arg-type]
        self.delivery_ticks = 0
        self.retention_ticks = 0

    def tick(self) -> bool:
        self.delivery_ticks += 1
        raise ValueError("boom")

    def tick_retrieval(self) -> int:
        return 0

    def tick_retention(self) -> int:
        self.retention_ticks += 1
        return 0


def test_ticker_keeps_ticking_and_runs_later_steps_when_a_step_raises(caplog):
    ticker = FailingTicker()
    ticker.start()
    try:
        wait_until(lambda: ticker.delivery_ticks >= 3 and ticker.retention_ticks >= 3, timeout=5)
    finally:
        ticker.stop()
        ticker.join(timeout=5)

    assert ticker.is_alive() is False
    assert "ticker step tick failed" in caplog.text
