"""A pause and what it shows, on a real Redis: a failure met while paused never brings a later probe nearer, and is
shown beside the pause's cause, as is what a probe met (`note`)."""

from __future__ import annotations

import pytest

from app.ops import StatsQuery, collect_stats
from app.store import keys

PAGE_ID = "100000000000001"
RATE_LIMITED = "Graph API 400 code 80005: rate limit; Graph estimates access again in 19 min"
UNAVAILABLE = "Graph API 503 code 2: temporary downtime"


@pytest.fixture
def stats(store, clock):
    return lambda: collect_stats(StatsQuery(store, 60, clock.now()))


def test_a_failure_met_while_paused_keeps_the_later_probe_time_and_is_shown_beside_its_cause(store, clock, stats):
    started = clock.now()
    first = store.fetch_pause.pause(RATE_LIMITED, started, started + 19 * 60)
    clock.advance(5)

    kept = store.fetch_pause.pause(UNAVAILABLE, clock.now(), clock.now() + 30)

    assert first.started and not kept.started
    assert kept.next_probe_at == started + 19 * 60
    assert kept.reason == f"{RATE_LIMITED}; met since: {UNAVAILABLE}"
    assert stats()["retrievalPause"] == {"reason": kept.reason, "since": started, "nextProbeAt": started + 19 * 60}


def test_a_failure_whose_probe_time_is_later_replaces_the_cause_and_what_was_met_since(store, clock):
    started = clock.now()
    store.fetch_pause.pause(RATE_LIMITED, started, started + 60)
    store.fetch_pause.pause(UNAVAILABLE, started, started + 30)  # met since, the rate limit's probe kept
    clock.advance(60)

    change = store.fetch_pause.pause("Graph API 400 code 190: token expired", clock.now(), clock.now() + 30)

    assert change.reason == "Graph API 400 code 190: token expired"
    assert store.fetch_pause.get().next_probe_at == clock.now() + 30
    assert store.fetch_pause.get().since == started


def test_a_note_is_shown_beside_the_cause_without_moving_the_probe_and_replaces_the_previous_note(store, clock, stats):
    store.pause.pause("careCycle 401 UNAUTHORIZED: bad key", clock.now(), clock.now() + 30)

    store.pause.note("the last upload met: careCycle 500 INTERNAL_ERROR")
    shown = store.pause.note("the last upload met: careCycle did not answer in time")

    assert shown == "careCycle 401 UNAUTHORIZED: bad key; the last upload met: careCycle did not answer in time"
    assert stats()["pause"]["reason"] == shown
    assert stats()["pause"]["nextProbeAt"] == clock.now() + 30


def test_a_note_without_a_pause_makes_none(store, clock, stats):
    assert store.pause.note("the last upload met: careCycle 500 INTERNAL_ERROR") is None

    assert store.pause.get() is None and stats()["paused"] is False


def test_a_page_paused_alone_is_listed_with_the_reason_its_pause_shows(store, clock, stats):
    store.page_pauses.pause(PAGE_ID, RATE_LIMITED, clock.now(), clock.now() + 600, 3600)

    change = store.page_pauses.pause(PAGE_ID, UNAVAILABLE, clock.now(), clock.now() + 30, 3600)

    assert change.next_probe_at == clock.now() + 600
    assert stats()["retrievalPausedPages"] == {PAGE_ID: f"{RATE_LIMITED}; met since: {UNAVAILABLE}"}


def test_a_pause_written_before_causes_were_kept_shows_only_the_latest_note_beside_its_reason(store, redis, clock):
    # A pause set by an earlier release has its reason and no cause: a probe failing again and again must not pile
    # up its notes (the reason would grow with every probe of a long pause).
    redis.hset(
        keys.pause_key(),
        mapping={"reason": "careCycle 401 UNAUTHORIZED: bad key", "since": repr(clock.now()), "next_probe_at": "1"},
    )

    for failure in ("careCycle 500 INTERNAL_ERROR", "careCycle 503 UNAVAILABLE", "careCycle did not answer in time"):
        shown = store.pause.note(f"the last upload met: {failure}")

    assert shown == "careCycle 401 UNAUTHORIZED: bad key; the last upload met: careCycle did not answer in time"
    assert store.pause.get().reason == shown
