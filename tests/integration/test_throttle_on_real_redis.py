"""The form throttle's Lua script on a real Redis: fixed windows, nothing counted when refused, counters expire."""

from __future__ import annotations

import pytest

from app.store import Store, keys
from app.store.throttle import WINDOW_SECONDS, RateLimitedError

NOW = 1_800_000_010.0
WINDOW = int(NOW // WINDOW_SECONDS)


def test_hits_count_in_the_client_and_the_source_window_with_a_ttl(redis):
    throttle = Store(redis).throttle

    throttle.hit_form("acme", "203.0.113.7", per_client=5, per_source=10, now=NOW)
    throttle.hit_form("acme", "203.0.113.8", per_client=5, per_source=10, now=NOW)

    assert redis.get(keys.form_ip_throttle_key("acme", "203.0.113.7", WINDOW)) == b"1"
    assert redis.get(keys.form_throttle_key("acme", WINDOW)) == b"2"
    assert 0 < redis.ttl(keys.form_throttle_key("acme", WINDOW)) <= WINDOW_SECONDS


def test_a_client_over_its_limit_is_refused_until_the_window_ends_and_spends_nothing(redis):
    throttle = Store(redis).throttle
    throttle.hit_form("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW)

    with pytest.raises(RateLimitedError) as refused:
        throttle.hit_form("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW + 5)

    assert refused.value.scope == "per client"
    assert refused.value.retry_after_seconds == 45
    assert redis.get(keys.form_throttle_key("acme", WINDOW)) == b"1"
    throttle.hit_form("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW + 50)


def test_a_source_over_its_limit_refuses_every_client(redis):
    throttle = Store(redis).throttle
    throttle.hit_form("acme", "203.0.113.1", per_client=5, per_source=1, now=NOW)

    with pytest.raises(RateLimitedError) as refused:
        throttle.hit_form("acme", "203.0.113.2", per_client=5, per_source=1, now=NOW)

    assert refused.value.scope == "per source"
    assert redis.get(keys.form_ip_throttle_key("acme", "203.0.113.2", WINDOW)) is None
