"""Retry schedule of failed uploads, as pure functions."""

from __future__ import annotations

import random


def jitter_factor(rng: random.Random) -> float:
    """A factor in [0.5, 1.0): "equal jitter", spreading retries without making them arbitrarily early."""
    return 0.5 + rng.random() / 2


def retry_delay_seconds(attempts: int, base_seconds: float, max_delay_seconds: float, jitter: float) -> float:
    """Delay before the next try of a lead that has failed `attempts` times (1 = first failure)."""
    exponent = max(0, attempts - 1)
    # Cap the exponent before computing it: 2 ** 1000 would overflow a float.
    raw = base_seconds * float(2 ** min(exponent, 32))
    return min(raw, max_delay_seconds) * jitter


def is_past_max_age(retries_since: float, now: float, max_age_seconds: float) -> bool:
    """True when a lead has been trying for longer than it may (since it came in, or an operator retried it)."""
    return now - retries_since >= max_age_seconds
