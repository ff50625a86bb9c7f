"""`/v1/stats`: every number SPEC lists, read in a fixed number of Redis round trips."""

from __future__ import annotations

import pytest

from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from app.store import keys
from app.store.batches import Outcome
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_lead, make_submission
from tests.storecheck import leads_in
from tests.support import wait_until
from workers.context import build_context
from workers.runner import DeliveryTicker

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def test_stats_show_every_number_spec_lists(client):
    stats = client.get("/v1/stats", headers=OPS).json

    assert set(stats) >= {
        "counts",
        "queueDepth",
        "oldestQueuedAgeSeconds",
        "delivered",
        "deliveredTotal",
        "deliveredTotalSince",
        "failed",
        "rateBudget",
        "estimatedDrainSeconds",
        "estimatedDrainBlockedBy",
        "paused",
        "pause",
        "lastDeliveryAt",
        "latencySeconds",
    }
    assert set(stats["counts"]) == {status.value for status in LeadStatus}
    assert set(stats["delivered"]) == set(stats["failed"]) == {"last5m", "last1h"}
    assert set(stats["latencySeconds"]) == {"p50", "p95"}


@pytest.mark.parametrize("leads", [0, 40])
def test_stats_take_one_round_trip_to_redis_whatever_the_number_of_leads(
    client, store, cipher, clock, round_trips, leads
):
    for status in (LeadStatus.QUEUED, LeadStatus.DELIVERED, LeadStatus.DEAD, LeadStatus.REJECTED):
        leads_in(store, cipher, clock, status, count=leads // 4)
    round_trips.clear()

    response = client.get("/v1/stats", headers=OPS)

    assert response.status_code == 200
    assert round_trips == ["PIPELINE(22)"]


def test_stats_count_deliveries_and_failures_by_window_with_latency_and_last_delivery(store, cipher, clock):
    fast, slow, bad = make_lead(), make_lead(), make_lead()
    store.leads.admit([fast, slow, bad], [cipher.seal(x.record) for x in (fast, slow, bad)], clock.now())
    clock.advance(2)
    batch = store.batches.claim(clock.now(), 200, 30)
    store.batches.settle(batch.id, [Outcome(fast.id, LeadStatus.DELIVERED, "ok")], clock.now(), release=False)
    clock.advance(8)
    store.batches.settle(
        batch.id,
        [Outcome(slow.id, LeadStatus.DELIVERED, "ok"), Outcome(bad.id, LeadStatus.REJECTED, "no", error="no")],
        clock.now(),
        release=True,
    )
    clock.advance(600)  # ten minutes on: out of the 5-minute window, still in the hour
    [queued] = leads_in(store, cipher, clock, LeadStatus.QUEUED)
    clock.advance(30)

    stats = collect_stats(StatsQuery(store, 60, clock.now()))

    assert stats["delivered"] == {"last5m": 0, "last1h": 2} and stats["failed"] == {"last5m": 0, "last1h": 1}
    assert stats["latencySeconds"] == {"p50": 2.0, "p95": 10.0}
    assert stats["lastDeliveryAt"] == clock.now() - 630
    assert stats["oldestQueuedAgeSeconds"] == 30.0 and stats["queueDepth"] == 1
    assert stats["counts"]["delivered"] == 2 and stats["counts"]["rejected"] == 1 and queued


def test_stats_say_the_relays_time_they_were_read_at_which_their_ages_are_measured_to(store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.QUEUED)
    clock.advance(90)

    stats = collect_stats(StatsQuery(store, 60, clock.now()))

    assert stats["readAt"] == clock.now() and stats["oldestQueuedAgeSeconds"] == 90.0


def test_stats_delivered_total_keeps_counting_the_delivered_leads_purged_after_the_retention(store, cipher, clock):
    started = clock.now()
    leads_in(store, cipher, clock, LeadStatus.DELIVERED, count=2)
    clock.advance(store.retention.retention.lead_seconds + 1)
    assert store.retention.purge(clock.now()).leads == 2
    leads_in(store, cipher, clock, LeadStatus.DELIVERED)
    leads_in(store, cipher, clock, LeadStatus.REJECTED)

    stats = collect_stats(StatsQuery(store, 60, clock.now()))

    assert stats["counts"]["delivered"] == 1  # the delivered leads held
    assert (stats["deliveredTotal"], stats["deliveredTotalSince"]) == (3, started)


def test_stats_delivered_total_is_zero_since_no_time_before_a_first_delivery(client):
    stats = client.get("/v1/stats", headers=OPS).json

    assert (stats["deliveredTotal"], stats["deliveredTotalSince"]) == (0, None)


def test_stats_show_a_meta_retrieval_pause_and_its_reason(client, store, clock):
    store.fetch_pause.pause("Graph token expired (code 190)", clock.now(), clock.now() + 30)

    stats = client.get("/v1/stats", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json

    assert stats["retrievalPaused"] is True and stats["paused"] is False
    assert stats["retrievalPause"]["reason"] == "Graph token expired (code 190)"


def test_stats_name_each_meta_form_whose_backfill_listing_is_refused_and_why_until_it_is_listed_again(client, store):
    refused = "Graph API 403 code 200: (#200) no lead access"
    store.refused_forms.refused("200000000000002", refused)
    store.refused_forms.refused("200000000000003", "Graph API 400 code 10: (#10) permission missing")
    store.refused_forms.listed("200000000000003")

    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["retrievalRefusedForms"] == {"200000000000002": refused}
    assert stats["retrievalPaused"] is False and stats["retrievalPausedPages"] == {}  # no Page paused on a guess


def test_stats_name_each_meta_form_whose_backfill_is_catching_up_and_how_far_until_it_is_listed_up_to_now(
    client, store, clock
):
    store.fetches.note_backfill_listed("200000000000002", clock.now() - 30 * 86400)
    store.fetches.note_backfill_listed("200000000000003", clock.now() - 2 * 86400)
    store.fetches.mark_backfilled("200000000000003", clock.now())

    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["backfillCatchingUp"] == {"200000000000002": clock.now() - 30 * 86400}


def test_stats_give_no_drain_estimate_while_delivery_is_paused(client, store, clock):
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
    store.budget.announce_limit(10)  # a worker runs
    headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    running = client.get("/v1/stats", headers=headers).json
    store.pause.pause("careCycle 401 UNAUTHORIZED", clock.now(), clock.now() + 30)

    paused = client.get("/v1/stats", headers=headers).json

    assert (running["estimatedDrainSeconds"], running["estimatedDrainBlockedBy"]) == (1, None)
    assert paused["queueDepth"] == 1
    assert (paused["estimatedDrainSeconds"], paused["estimatedDrainBlockedBy"]) == (None, "paused")


def test_the_drain_estimate_waits_for_a_retrying_lead_due_after_its_backoff(store, cipher, clock):
    retrying, fresh = make_lead(), make_lead()
    store.leads.admit([retrying], [cipher.seal(retrying.record)], clock.now())
    batch = store.batches.claim(clock.now(), 200, 30)
    due = clock.now() + 600
    outcome = Outcome(retrying.id, LeadStatus.RETRYING, "careCycle 503", error="503", ready_at=due, next_attempt_at=due)
    store.batches.settle(batch.id, [outcome], clock.now(), release=True)
    store.leads.admit([fresh], [cipher.seal(fresh.record)], clock.now())
    clock.advance(100)
    store.budget.announce_limit(10)  # a worker runs

    stats = collect_stats(StatsQuery(store, 60, clock.now()))

    assert stats["queueDepth"] == 2
    assert stats["estimatedDrainSeconds"] == 500  # not 1 s: the retry is not sent before its time


def test_the_drain_estimate_starts_when_carecycles_retry_after_ends(store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=1000)
    store.budget.announce_limit(60)  # a worker runs
    before = collect_stats(StatsQuery(store, 60, clock.now()))
    store.budget.hold_until(clock.now() + 60, clock.now())  # careCycle answered 429 with retryAfter 60
    clock.advance(15)

    held = collect_stats(StatsQuery(store, 60, clock.now()))

    assert before["estimatedDrainSeconds"] == 5  # 1000 records at 60 requests of 200 a minute
    assert held["estimatedDrainSeconds"] == 45 + 5  # no request goes before the hold ends


@pytest.mark.parametrize(
    ("ago", "last5m", "last1h"), [(250, 1, 1), (299, 1, 1), (301, 0, 1), (3590, 0, 1), (3599, 0, 1), (3601, 0, 0)]
)
def test_stats_windows_count_a_settled_lead_by_its_age_to_the_second(store, cipher, clock, ago, last5m, last1h):
    good, bad = make_lead(), make_lead()
    store.leads.admit([good, bad], [cipher.seal(x.record) for x in (good, bad)], clock.now())
    clock.advance(50)  # settled late in a minute...
    batch = store.batches.claim(clock.now(), 200, 30)
    outcomes = [Outcome(good.id, LeadStatus.DELIVERED, "ok"), Outcome(bad.id, LeadStatus.REJECTED, "no", error="no")]
    store.batches.settle(batch.id, outcomes, clock.now(), release=True)
    clock.advance(ago)  # ...and read early in another

    stats = collect_stats(StatsQuery(store, 60, clock.now()))

    assert stats["delivered"] == stats["failed"] == {"last5m": last5m, "last1h": last1h}


def test_stats_show_the_rate_limit_the_workers_pace_by_not_the_web_tiers_setting(
    client, settings, redis, store, cipher, clock
):
    # The web tier's setting says 60 a minute (the default); the workers run with 6.
    DeliveryTicker(build_context(settings.replace(carecycle_rate_limit_per_min=6), redis=redis)).announce_rate_limit()
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=41)

    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["rateBudget"] == {"limitPerMinute": 6, "limitFrom": "workers", "usedLastMinute": 0}
    assert stats["estimatedDrainSeconds"] == 3  # 41 records at 6 requests of 200 a minute


def test_stats_show_the_configured_rate_limit_and_no_drain_estimate_while_no_worker_runs(client, store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=41)

    stats = client.get("/v1/stats", headers=OPS).json

    assert stats["rateBudget"] == {"limitPerMinute": 60, "limitFrom": "settings", "usedLastMinute": 0}
    # Not 1 s at the setting's limit: no lead leaves until a worker runs.
    assert (stats["estimatedDrainSeconds"], stats["estimatedDrainBlockedBy"]) == (None, "noWorker")


@pytest.mark.parametrize("queued", [0, 3])
def test_stats_name_no_worker_first_of_what_blocks_the_drain_and_give_the_estimate_once_one_runs(
    client, store, cipher, clock, queued
):
    # With no worker, a pause is not probed nor careCycle's failing spell ended: no worker is what to see to first.
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=queued)
    store.pause.pause("careCycle 401 UNAUTHORIZED", clock.now(), clock.now() + 30)
    store.outage.failing("careCycle 503 SERVICE_UNAVAILABLE", clock.now())
    blocked = [client.get("/v1/stats", headers=OPS).json["estimatedDrainBlockedBy"]]
    store.budget.announce_limit(10)
    blocked.append(client.get("/v1/stats", headers=OPS).json["estimatedDrainBlockedBy"])
    store.pause.resume()
    blocked.append(client.get("/v1/stats", headers=OPS).json["estimatedDrainBlockedBy"])
    store.outage.recovered(clock.now())

    stats = client.get("/v1/stats", headers=OPS).json

    assert blocked == ["noWorker", "paused", "careCycleFailing"]
    assert stats["estimatedDrainBlockedBy"] is None and stats["estimatedDrainSeconds"] == (1 if queued else 0)


def test_a_running_worker_records_its_rate_limit_for_a_few_ticks_only(settings, redis, store, clock):
    ticker = DeliveryTicker(build_context(settings.replace(carecycle_rate_limit_per_min=6), redis=redis), 0.2)
    ticker.start()
    try:
        wait_until(lambda: collect_stats(StatsQuery(store, 60, clock.now()))["rateBudget"]["limitFrom"] == "workers")
    finally:
        ticker.stop()
        ticker.join(timeout=5)

    assert collect_stats(StatsQuery(store, 60, clock.now()))["rateBudget"]["limitPerMinute"] == 6
    assert 0 < redis.pttl(keys.rate_limit_in_use_key()) <= 10 * 0.2 * 1000  # gone once no worker runs


def test_stats_say_carecycle_is_failing_and_give_no_drain_estimate_until_it_answers_again(client, store, clock):
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
    store.budget.announce_limit(60)  # a worker runs
    store.outage.failing("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", clock.now())
    clock.advance(40)
    store.outage.failing("careCycle timed out", clock.now())

    failing = client.get("/v1/stats", headers=OPS).json
    store.outage.recovered(clock.now())
    running = client.get("/v1/stats", headers=OPS).json

    assert failing["careCycleFailing"] == {
        "since": clock.now() - 40,
        "lastAt": clock.now(),
        "reason": "careCycle timed out",
    }
    assert failing["paused"] is False and failing["estimatedDrainSeconds"] is None
    assert failing["estimatedDrainBlockedBy"] == "careCycleFailing"
    assert running["careCycleFailing"] is None and running["estimatedDrainSeconds"] == 1


def test_stats_latency_is_that_of_the_last_hours_deliveries_not_of_old_ones(store, cipher, clock):
    # An outage's slow deliveries went on setting the p95 long after: the samples kept no time, only the latest 1,000.
    def deliver(waited_seconds):
        lead = make_lead()
        store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
        clock.advance(waited_seconds)
        batch = store.batches.claim(clock.now(), 200, 30)
        store.batches.settle(batch.id, [Outcome(lead.id, LeadStatus.DELIVERED, "ok")], clock.now(), release=True)

    deliver(900)  # after an outage
    clock.advance(2 * 3600)
    assert collect_stats(StatsQuery(store, 60, clock.now()))["latencySeconds"] == {"p50": None, "p95": None}

    deliver(1)
    assert collect_stats(StatsQuery(store, 60, clock.now()))["latencySeconds"] == {"p50": 1.0, "p95": 1.0}
