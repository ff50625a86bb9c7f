"""The form throttle's Lua script on a real Redis: fixed windows, nothing counted when refused, counters expire."""

from __future__ import annotations

import pytest

from app.models import LeadStatus
from app.store import Store, keys
from app.store.throttle import WINDOW_SECONDS, RateLimitedError, form_gate
from tests.factories import make_lead

NOW = 1_800_000_010.0
WINDOW = int(NOW // WINDOW_SECONDS)


def test_hits_count_in_the_client_and_the_source_window_with_a_ttl(redis):
    throttle = Store(redis).throttle

    throttle.hit(form_gate("acme", "203.0.113.7", per_client=5, per_source=10, now=NOW), NOW)
    throttle.hit(form_gate("acme", "203.0.113.8", per_client=5, per_source=10, now=NOW), NOW)

    assert redis.get(keys.form_ip_throttle_key("acme", "203.0.113.7", WINDOW)) == b"1"
    assert redis.get(keys.form_throttle_key("acme", WINDOW)) == b"2"
    counted = [keys.form_ip_throttle_key("acme", "203.0.113.7", WINDOW), keys.form_throttle_key("acme", WINDOW)]
    assert all(0 < redis.ttl(key) <= WINDOW_SECONDS for key in counted)  # a window hit once expires too


def test_a_client_over_its_limit_is_refused_until_the_window_ends_and_spends_nothing(redis):
    throttle = Store(redis).throttle
    throttle.hit(form_gate("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW), NOW)

    with pytest.raises(RateLimitedError) as refused:
        throttle.hit(form_gate("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW + 5), NOW + 5)

    assert refused.value.scope == "per client"
    assert refused.value.retry_after_seconds == 45
    assert redis.get(keys.form_throttle_key("acme", WINDOW)) == b"1"
    throttle.hit(form_gate("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW + 50), NOW + 50)


def test_a_source_over_its_limit_refuses_every_client(redis):
    throttle = Store(redis).throttle
    throttle.hit(form_gate("acme", "203.0.113.1", per_client=5, per_source=1, now=NOW), NOW)

    with pytest.raises(RateLimitedError) as refused:
        throttle.hit(form_gate("acme", "203.0.113.2", per_client=5, per_source=1, now=NOW), NOW)

    assert refused.value.scope == "per source"
    assert redis.get(keys.form_ip_throttle_key("acme", "203.0.113.2", WINDOW)) is None


def test_admission_through_a_gate_counts_the_post_and_stores_the_lead_in_one_script_call(store, cipher):
    lead = make_lead()
    gate = form_gate("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW)

    [admitted] = store.leads.admit([lead], [cipher.seal(lead.record)], NOW, gate)

    assert admitted.id == lead.id and not admitted.repeated
    assert store.redis.get(keys.form_ip_throttle_key("acme", "203.0.113.7", WINDOW)) == b"1"
    assert store.redis.get(keys.form_throttle_key("acme", WINDOW)) == b"1"


def test_admission_through_a_full_gate_stores_nothing_and_counts_nothing(store, cipher):
    first, second = make_lead(), make_lead()
    gate = form_gate("acme", "203.0.113.7", per_client=1, per_source=10, now=NOW)
    store.leads.admit([first], [cipher.seal(first.record)], NOW, gate)

    with pytest.raises(RateLimitedError) as refused:
        store.leads.admit([second], [cipher.seal(second.record)], NOW + 5, gate)

    assert refused.value.scope == "per client" and refused.value.retry_after_seconds == 45
    assert not store.redis.exists(keys.lead_key(second.id))
    assert store.redis.get(keys.form_throttle_key("acme", WINDOW)) == b"1"
    assert store.leads.status_counts()[LeadStatus.QUEUED] == 1


def test_a_gate_admits_one_lead_at_a_time(store, cipher):
    leads = [make_lead(), make_lead()]
    gate = form_gate("acme", "203.0.113.7", per_client=5, per_source=10, now=NOW)

    with pytest.raises(ValueError, match="one lead"):
        store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], NOW, gate)

    assert store.redis.get(keys.form_throttle_key("acme", WINDOW)) is None
