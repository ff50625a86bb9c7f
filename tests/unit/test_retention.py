"""Retention: records purged after LEADRELAY_RECORD_RETENTION_HOURS, leads after LEADRELAY_RETENTION_DAYS."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app import create_app
from app.config import ConfigError, Settings
from app.crypto import fingerprint_of
from app.models import LeadStatus
from app.store import LeadNotFoundError, Store, keys, retention
from app.store.batches import Outcome
from app.store.retention import PurgeReport
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_lead, make_submission
from tests.storecheck import assert_indexes_consistent, index_ids, leads_in
from workers.runner import DeliveryTicker

HOUR, DAY = 3600, 86400


def has_record(store, lead_id):
    return bool(store.redis.hexists(keys.lead_key(lead_id), "record"))


def test_retention_settings_default_to_24_hours_and_30_days_and_reach_the_store(settings, redis):
    store = Store.from_settings(settings.replace(leadrelay_record_retention_hours=2, leadrelay_retention_days=7), redis)

    assert (Settings().leadrelay_record_retention_hours, Settings().leadrelay_retention_days) == (24.0, 30.0)
    assert Settings().record_retention_seconds() == DAY and Settings().retention_seconds() == 30 * DAY
    assert (store.retention.retention.record_seconds, store.retention.retention.lead_seconds) == (2 * HOUR, 7 * DAY)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        pytest.param({"LEADRELAY_RECORD_RETENTION_HOURS": "0"}, "LEADRELAY_RECORD_RETENTION_HOURS", id="zero-hours"),
        pytest.param({"LEADRELAY_RETENTION_DAYS": "a month"}, "LEADRELAY_RETENTION_DAYS", id="not-a-number"),
        pytest.param(
            {"LEADRELAY_RECORD_RETENTION_HOURS": "48", "LEADRELAY_RETENTION_DAYS": "1"},
            "LEADRELAY_RECORD_RETENTION_HOURS",
            id="records-kept-longer-than-leads",
        ),
    ],
)
def test_retention_settings_refuse_bad_values_naming_the_variable(environ, variable):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ)

    assert [p.split(":")[0] for p in raised.value.problems] == [variable]


def test_records_kept_longer_than_leads_are_refused_saying_how_long_they_may_be_kept():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"LEADRELAY_RECORD_RETENTION_HOURS": "48", "LEADRELAY_RETENTION_DAYS": "1.5"})

    assert raised.value.problems == [
        "LEADRELAY_RECORD_RETENTION_HOURS: must not exceed LEADRELAY_RETENTION_DAYS=1.5: expected at most 36 (hours)"
    ]


def test_purge_deletes_a_delivered_leads_record_after_the_record_retention_and_keeps_its_status(store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DELIVERED)
    clock.advance(DAY - 1)
    assert store.retention.purge(clock.now()) == PurgeReport(0, 0)
    assert has_record(store, lead.id)

    clock.advance(1)
    report = store.retention.purge(clock.now())

    assert report == PurgeReport(records=1, leads=0)
    assert not has_record(store, lead.id)
    assert store.leads.get(lead.id).status is LeadStatus.DELIVERED
    assert store.redis.ttl(keys.lead_key(lead.id)) == -1  # the purge pass alone ends it, under the settings of then


@pytest.mark.parametrize("status", [LeadStatus.DEAD, LeadStatus.REJECTED, LeadStatus.DUPLICATE])
def test_purge_keeps_the_records_of_leads_an_operator_may_retry(client, store, cipher, clock, status):
    [lead] = leads_in(store, cipher, clock, status)
    clock.advance(3 * DAY)

    store.retention.purge(clock.now())

    assert has_record(store, lead.id)
    response = client.post(f"/v1/leads/{lead.id}/retry", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert response.json["status"] == "queued"
    assert store.redis.ttl(keys.lead_key(lead.id)) == -1


@pytest.mark.parametrize(
    ("status", "purged"),
    [pytest.param(LeadStatus.TEST, True, id="test-lead"), pytest.param(LeadStatus.REJECTED, False, id="rejected")],
)
def test_purge_deletes_a_kept_submission_after_the_record_retention_unless_the_lead_can_be_retried(
    store, cipher, clock, status, purged
):
    lead = make_lead(status=status, unnormalized=True)
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    clock.advance(DAY)

    report = store.retention.purge(clock.now())

    assert report == PurgeReport(records=int(purged), leads=0)
    assert store.redis.hexists(keys.lead_key(lead.id), keys.SUBMISSION_FIELD) != purged
    assert store.leads.get(lead.id).status is status


@pytest.mark.parametrize(
    "status",
    [
        LeadStatus.DELIVERED,
        LeadStatus.DEAD,
        LeadStatus.REJECTED,
        LeadStatus.SPAM,
        LeadStatus.TEST,
        LeadStatus.DUPLICATE,
    ],
)
def test_purge_deletes_a_final_lead_entirely_after_the_retention_days(store, cipher, clock, status):
    [lead] = leads_in(store, cipher, clock, status, source="web")
    [kept] = leads_in(store, cipher, clock, LeadStatus.QUEUED, source="web")
    clock.advance(30 * DAY)

    report = store.retention.purge(clock.now())

    assert report.leads == 1
    with pytest.raises(LeadNotFoundError):
        store.leads.get(lead.id)
    assert not store.redis.exists(keys.lead_events_key(lead.id))
    assert store.leads.status_counts()[status] == 0  # counts are of the leads the relay holds
    assert index_ids(store.redis, keys.source_index_key("web")) == [kept.id]
    assert_indexes_consistent(store)


def test_purge_follows_the_retention_in_force_when_it_runs(settings, redis, cipher, clock):
    early = Store.from_settings(settings, redis)
    [lead] = leads_in(early, cipher, clock, LeadStatus.DELIVERED)
    clock.advance(2 * DAY)
    shorter = Store.from_settings(
        settings.replace(leadrelay_record_retention_hours=1, leadrelay_retention_days=1), redis
    )

    assert shorter.retention.purge(clock.now()) == PurgeReport(records=1, leads=1)
    assert not redis.exists(keys.lead_key(lead.id))


def test_raising_the_retention_keeps_a_lead_past_its_record_stage_for_the_longer_time(settings, redis, cipher, clock):
    first = Store.from_settings(settings, redis)
    [lead] = leads_in(first, cipher, clock, LeadStatus.DELIVERED, source="web")
    clock.advance(2 * DAY)
    assert first.retention.purge(clock.now()) == PurgeReport(records=1, leads=0)
    assert redis.ttl(keys.lead_key(lead.id)) == -1  # no expiry set under the 30 days to cut the 90 short
    longer = Store.from_settings(settings.replace(leadrelay_retention_days=90), redis)

    clock.advance(43 * DAY)  # 45 days after delivery: past the old 30 days, within the new 90
    assert longer.retention.purge(clock.now()) == PurgeReport(0, 0)
    assert longer.leads.get(lead.id).status is LeadStatus.DELIVERED
    assert longer.leads.status_counts()[LeadStatus.DELIVERED] == 1

    clock.advance(46 * DAY)
    assert longer.retention.purge(clock.now()) == PurgeReport(records=0, leads=1)
    assert longer.leads.status_counts()[LeadStatus.DELIVERED] == 0
    assert_indexes_consistent(longer)


def test_purge_leaves_alone_leads_still_in_delivery(store, cipher, clock):
    statuses = [LeadStatus.SENDING, LeadStatus.QUEUED, LeadStatus.FETCHING]  # claiming takes every queued lead
    pending = [leads_in(store, cipher, clock, status)[0] for status in statuses]
    clock.advance(365 * DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(0, 0)
    assert [lead.status for lead in store.leads.get_many(lead.id for lead in pending)] == statuses


def test_purge_spares_a_lead_retried_before_its_retention_ran_out(client, store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)
    clock.advance(29 * DAY)
    client.post(f"/v1/leads/{lead.id}/retry", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    clock.advance(2 * DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(0, 0)
    assert store.leads.get(lead.id).status is LeadStatus.QUEUED and has_record(store, lead.id)


def test_purge_works_through_a_backlog_in_bounded_steps(store, cipher, clock, monkeypatch):
    monkeypatch.setattr(retention, "PURGE_CHUNK_LEADS", 2)
    leads_in(store, cipher, clock, LeadStatus.DELIVERED, count=7)
    clock.advance(31 * DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=7, leads=7)
    assert store.leads.status_counts()[LeadStatus.DELIVERED] == 0
    assert_indexes_consistent(store)


def test_purge_goes_on_past_a_chunk_of_failed_leads_whose_records_it_keeps(store, cipher, clock, monkeypatch):
    # A chunk that deletes nothing (records kept for a retry) is no sign that nothing more is due.
    monkeypatch.setattr(retention, "PURGE_CHUNK_LEADS", 2)
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=3)
    clock.advance(1)
    delivered = leads_in(store, cipher, clock, LeadStatus.DELIVERED, count=2)
    clock.advance(DAY)

    assert store.retention.purge(clock.now()) == PurgeReport(records=2, leads=0)
    assert not any(has_record(store, lead.id) for lead in delivered)


def test_purge_cleans_indexes_and_counts_of_a_lead_whose_hash_expired_first(store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.REJECTED, source="web")
    store.redis.delete(keys.lead_key(lead.id))  # by hand, or by the expiry an earlier version set
    clock.advance(31 * DAY)

    assert store.retention.purge(clock.now()).leads == 1
    assert store.leads.status_counts()[LeadStatus.REJECTED] == 0
    assert index_ids(store.redis, keys.source_index_key("web")) == []
    assert_indexes_consistent(store)


def test_purge_runs_at_most_once_per_interval_across_workers(settings, redis, cipher, clock):
    one, other = Store.from_settings(settings, redis), Store.from_settings(settings, redis)
    leads_in(one, cipher, clock, LeadStatus.SPAM, count=2)
    clock.advance(31 * DAY)

    assert one.retention.purge_if_due(clock.now()) == PurgeReport(records=2, leads=2)
    assert other.retention.purge_if_due(clock.now()) is None
    assert 0 < redis.ttl(keys.purge_lock_key()) <= retention.PURGE_INTERVAL_SECONDS


def test_worker_ticker_runs_the_purge_pass(store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DELIVERED)
    clock.advance(31 * DAY)
    ticker = DeliveryTicker(SimpleNamespace(store=store, clock=clock))  # only what the retention tick uses

    assert ticker.tick_retention() == PurgeReport(records=1, leads=1)
    assert ticker.tick_retention() is None
    assert not store.redis.exists(keys.lead_key(lead.id))


def test_an_idempotency_key_lives_no_longer_than_its_lead_is_kept(settings, redis, clock, cipher):
    short = settings.replace(leadrelay_record_retention_hours=1, leadrelay_retention_days=2)
    client = create_app(short, redis=redis, clock=clock).test_client()
    headers = {"X-Api-Key": SOURCE_KEY, "Idempotency-Key": "order-17"}
    fingerprint = fingerprint_of(cipher.initial_fingerprint_secret(), "order-17")  # a fresh Redis's secret
    stored_key = keys.idempotency_key("partner", f"key:{fingerprint}")

    first = client.post("/v1/leads", json=make_submission(), headers=headers).json

    assert 2 * DAY - 60 < redis.ttl(stored_key) <= 2 * DAY  # not the usual week
    redis.delete(stored_key)  # as its expiry does, when the lead may be gone
    again = client.post("/v1/leads", json=make_submission(), headers=headers).json
    assert again["id"] != first["id"] and again["status"] == "queued"


def test_an_idempotency_key_set_under_a_longer_retention_makes_a_new_lead_once_its_lead_was_purged(
    settings, redis, clock
):
    # Lowering the retention purges leads whose keys were set for the week: a repeat then names no lead it could
    # answer for (its answer said `queued` for a lead that 404s), and the submission was never taken in again.
    client = create_app(settings, redis=redis, clock=clock).test_client()
    headers = {"X-Api-Key": SOURCE_KEY, "Idempotency-Key": "order-18"}
    first = client.post("/v1/leads", json=make_submission(), headers=headers).json
    store = Store.from_settings(settings, redis)
    store.batches.settle(
        store.batches.claim(clock.now(), 200, 30).id,
        [Outcome(first["id"], LeadStatus.DELIVERED, "test: delivered")],
        clock.now(),
        release=True,
    )
    clock.advance(3 * DAY)
    lowered = settings.replace(leadrelay_record_retention_hours=1, leadrelay_retention_days=2)
    assert Store.from_settings(lowered, redis).retention.purge(clock.now()).leads == 1

    again = (
        create_app(lowered, redis=redis, clock=clock)
        .test_client()
        .post("/v1/leads", json=make_submission(), headers=headers)
    )

    assert again.status_code == 202 and again.json["id"] != first["id"] and again.json["status"] == "queued"
    assert store.leads.get(again.json["id"]).status is LeadStatus.QUEUED
    repeat = client.post("/v1/leads", json=make_submission(), headers=headers).json
    assert repeat["id"] == again.json["id"]  # the key now names the new lead


def test_a_meta_lead_announced_again_after_its_lead_was_purged_is_still_a_repeat(settings, redis, cipher, clock):
    # Meta remembers a leadgen id longer than leads are kept: a late webhook retry must not be fetched and billed again.
    short = Store.from_settings(settings.replace(leadrelay_record_retention_hours=1, leadrelay_retention_days=1), redis)
    announced = {
        "idempotency_key": "leadgen:9001",
        "idempotency_ttl_seconds": 90 * DAY,
        "idempotency_outlives_lead": True,
    }
    [first] = leads_in(short, cipher, clock, LeadStatus.DELIVERED, source="fb", **announced)
    clock.advance(2 * DAY)
    assert short.retention.purge(clock.now()).leads == 1

    [again] = short.leads.admit([make_lead(source="fb", **announced)], [""], clock.now())

    assert (again.id, again.repeated) == (first.id, True)
    assert short.leads.status_counts()[LeadStatus.QUEUED] == 0


def test_a_purged_lead_is_answered_404_saying_that_leads_are_deleted_after_the_retention(client, store, cipher, clock):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)
    clock.advance(31 * DAY)
    assert store.retention.purge(clock.now()).leads == 1
    ops = {"Authorization": f"Bearer {OPS_TOKEN}"}

    status = client.get(f"/v1/leads/{lead.id}", headers=ops)
    retry = client.post(f"/v1/leads/{lead.id}/retry", headers=ops)

    for answer in (status, retry):
        assert answer.status_code == 404
        assert answer.json["error"]["code"] == "NOT_FOUND"
        assert "deleted" in answer.json["error"]["message"]
        assert "LEADRELAY_RETENTION_DAYS" in answer.json["error"]["message"]
