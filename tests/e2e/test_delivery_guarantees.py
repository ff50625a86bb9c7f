"""Delivery guarantees end to end: a real Redis, worker processes and the careCycle sandbox over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from app.models import LeadStatus
from tests.factories import make_phone, make_submission
from tests.realredis import redis_server_process
from tests.support import wait_until


def accepted_requests(sandbox):
    return [r for r in sandbox.sandbox.requests if r.status != 429]


def test_a_burst_of_1000_leads_leaves_in_full_batches_within_the_rate_limit(relay, sandbox, submissions):
    relay.start_worker("burst")

    relay.post_leads(submissions(1000))
    relay.wait_delivered(1000, timeout=30)

    received = sandbox.sandbox.requests
    assert len(received) <= 8
    assert max(r.record_count for r in received) <= 200
    assert sum(r.record_count for r in received if r.status == 200) == 1000
    assert all(r.status == 200 for r in received)
    assert sandbox.sandbox.max_requests_in_any_window(60) <= relay.settings.carecycle_rate_limit_per_min


def test_a_lone_lead_reaches_carecycle_within_two_seconds_of_intake(relay, sandbox):
    relay.start_worker("idle")
    wait_until(lambda: len(relay.store.lanes.free_lanes()) == relay.store.lanes.count, timeout=5)

    started = time.monotonic()
    lead_id = relay.post_lead()
    wait_until(lambda: sandbox.sandbox.requests, timeout=5)
    elapsed = time.monotonic() - started

    assert elapsed <= 2.0
    assert sandbox.sandbox.requests[0].external_ids == (lead_id,)
    wait_until(lambda: relay.status(lead_id)["status"] == "delivered", timeout=5)


def test_only_the_records_carecycle_refuses_are_rejected_and_their_batch_mates_delivered(relay, sandbox):
    refused_per_record, refused_by_422 = make_phone(), make_phone()
    sandbox.sandbox.set_faults(reject_phones=[refused_per_record], invalid_phones=[refused_by_422])
    batch = [make_submission() for _ in range(4)]
    batch[1]["phoneNumber"] = refused_per_record
    batch[3]["phoneNumber"] = refused_by_422
    ids = relay.post_leads(batch)

    relay.start_worker("rejections")
    wait_until(lambda: relay.count(LeadStatus.DELIVERED) + relay.count(LeadStatus.REJECTED) == 4, timeout=15)

    statuses = [relay.status(i) for i in ids]
    assert [s["status"] for s in statuses] == ["delivered", "rejected", "delivered", "rejected"]
    assert statuses[1]["error"] == "Invalid phone number"
    assert statuses[3]["error"] == "phoneNumber: Invalid phone number format"
    assert sandbox.sandbox.delivered_external_ids() == Counter({ids[0]: 1, ids[2]: 1})


def test_every_lead_is_delivered_despite_server_errors_and_timeouts(relay, sandbox, submissions):
    sandbox.sandbox.set_faults(error_rate=0.3, timeout_rate=0.4, stall_seconds=1.5, rate_limit_per_min=600)
    sandbox.sandbox.fail_next(500, times=2)
    relay.settings = relay.settings.replace(carecycle_rate_limit_per_min=600)
    ids = relay.post_leads(submissions(1000))
    relay.start_worker("faults")

    relay.wait_delivered(1000, timeout=60)

    statuses = Counter(r.status for r in sandbox.sandbox.requests)
    assert statuses[500] > 0 and any(r.stalled for r in sandbox.sandbox.requests)
    assert set(sandbox.sandbox.delivered_external_ids()) == set(ids)
    assert relay.count(LeadStatus.DEAD) == 0
    retried = [relay.status(i) for i in ids[::20]]
    assert any(s["attempts"] > 1 for s in retried)


def test_a_record_carecycle_fails_on_every_time_ends_alone_and_its_batch_mates_are_delivered(relay, sandbox):
    choking = make_phone()
    sandbox.sandbox.set_faults(choke_phones=[choking], rate_limit_per_min=600)
    relay.settings = relay.settings.replace(carecycle_rate_limit_per_min=600)
    batch = [make_submission() for _ in range(40)]
    batch[23]["phoneNumber"] = choking
    ids = relay.post_leads(batch)
    poison, mates = ids[23], ids[:23] + ids[24:]
    relay.start_worker("isolation")

    # Leads keep coming in meanwhile: careCycle taking them is what tells a record's fault from an outage.
    newcomers: list[str] = []

    def mates_delivered_and_the_record_sent_alone() -> bool:
        newcomers.append(relay.post_lead())
        alone = any(r.external_ids == (poison,) for r in sandbox.sandbox.requests)
        return alone and relay.count(LeadStatus.DELIVERED) >= len(mates) + len(newcomers) - 1

    wait_until(mates_delivered_and_the_record_sent_alone, timeout=30, interval=0.2)

    assert {relay.status(i)["status"] for i in mates} == {"delivered"}
    assert relay.status(poison)["status"] == "retrying"
    holding = [r for r in sandbox.sandbox.requests if poison in r.external_ids]
    assert all(r.status == 500 for r in holding)
    assert holding[0].record_count >= 40 and holding[-1].external_ids == (poison,)
    assert len([r for r in holding if r.record_count > 1]) <= 2 + 6  # then halved: 20, 10, 5, 3, 2
    # No lead that came in later went with it: those were sent on their own, and careCycle took them.
    assert set().union(*(r.external_ids for r in holding[1:])) <= set(holding[0].external_ids)
    delivered = sandbox.sandbox.delivered_external_ids()
    assert set(mates) <= set(delivered) and poison not in delivered
    assert sandbox.sandbox.max_requests_in_any_window(60) <= relay.settings.carecycle_rate_limit_per_min


def test_an_outage_splits_no_batch_and_its_backlog_leaves_in_full_batches_once_carecycle_is_back(
    relay, sandbox, submissions
):
    sandbox.sandbox.set_faults(down=True)
    ids = relay.post_leads(submissions(400))
    relay.start_worker("outage")
    wait_until(lambda: relay.count(LeadStatus.RETRYING) == 400, timeout=10)
    # Leads keep coming in, one by one, and fail alone; the backlog fails again and again meanwhile.
    ids += [relay.post_lead() for _ in range(3)]
    wait_until(lambda: relay.count(LeadStatus.RETRYING) == 403 and len(sandbox.sandbox.requests) >= 10, timeout=20)

    failed = len(sandbox.sandbox.requests)
    sandbox.sandbox.set_faults(down=False)
    relay.wait_delivered(403, timeout=20)

    after = sandbox.sandbox.requests[failed:]
    # The first upload careCycle takes makes the rest due at once: they go in full batches, not one by one.
    assert len(after) <= 4 and sum(r.record_count for r in after if r.status == 200) == 403
    assert set(sandbox.sandbox.delivered_external_ids()) == set(ids)
    assert relay.stats()["careCycleFailing"] is None


def test_no_request_goes_before_carecycle_retry_after_has_passed(relay, sandbox):
    sandbox.sandbox.fail_next(429, retry_after=3)
    lead_id = relay.post_lead()
    relay.start_worker("throttled")

    wait_until(lambda: relay.status(lead_id)["status"] == "delivered", timeout=15)

    first, second = sandbox.sandbox.requests[:2]
    assert first.status == 429
    assert second.monotonic - first.monotonic >= 3.0
    assert second.external_ids == (lead_id,)


def test_401_pauses_delivery_visibly_and_it_resumes_by_itself_once_the_key_works(relay, sandbox, submissions):
    sandbox.sandbox.set_faults(auth_mode=401)
    ids = relay.post_leads(submissions(20))
    relay.start_worker("paused")

    wait_until(lambda: relay.stats()["paused"], timeout=10)
    paused_at = time.monotonic()
    wait_until(lambda: len(sandbox.sandbox.requests) >= 3, timeout=10)  # probes while the key is still refused
    stats = relay.stats()
    assert "401" in stats["pause"]["reason"] and "UNAUTHORIZED" in stats["pause"]["reason"]
    assert stats["counts"]["dead"] == 0
    assert all(relay.status(i)["attempts"] == 0 for i in ids)
    interval = relay.settings.leadrelay_pause_probe_seconds
    # About one probe per interval, not a retry storm (the first request is the one that paused delivery).
    assert len(sandbox.sandbox.requests) <= 2 + (time.monotonic() - paused_at) / interval

    sandbox.sandbox.set_faults(auth_mode=None)
    relay.wait_delivered(20, timeout=15)
    assert relay.stats()["paused"] is False
    assert set(sandbox.sandbox.delivered_external_ids()) == set(ids)


def test_a_batch_in_flight_when_its_worker_is_killed_is_delivered_by_the_next_worker(relay, sandbox, submissions):
    sandbox.sandbox.set_faults(timeout_rate=1.0, stall_seconds=30)
    ids = relay.post_leads(submissions(50))
    doomed = relay.start_worker("doomed", carecycle_read_timeout_seconds=5.0, leadrelay_visibility_timeout_seconds=11.0)
    wait_until(lambda: sandbox.sandbox.requests, timeout=10)
    relay.kill(doomed)
    in_flight = set(sandbox.sandbox.requests[0].external_ids)
    sandbox.sandbox.set_faults(timeout_rate=0.0)
    sandbox.sandbox.release_stalls()
    more = relay.post_leads(submissions(10))

    relay.start_worker("successor")
    relay.wait_delivered(60, timeout=30)

    delivered = sandbox.sandbox.delivered_external_ids()
    assert set(delivered) == set(ids + more)
    duplicates = {external_id for external_id, times in delivered.items() if times > 1}
    assert duplicates == in_flight and len(in_flight) == 50


def test_two_workers_together_keep_to_the_shared_rate_limit(relay, sandbox, submissions):
    limit = 300
    sandbox.sandbox.set_faults(rate_limit_per_min=limit, timeout_rate=1.0, stall_seconds=0.6)
    relay.settings = relay.settings.replace(
        carecycle_rate_limit_per_min=limit,
        carecycle_read_timeout_seconds=3.0,
        leadrelay_visibility_timeout_seconds=10.0,
    )
    relay.post_leads(submissions(3000))
    relay.start_worker("first")
    relay.start_worker("second")

    relay.wait_delivered(3000, timeout=60)

    arrivals = sorted(r.monotonic for r in accepted_requests(sandbox))
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    interval = 60 / limit
    # Arrival times carry the scheduling jitter of a busy machine (a request sent on its slot may arrive tens
    # of milliseconds late, the next on time): no two requests share a slot, and any five span their slots.
    assert min(gaps) >= 0.5 * interval
    assert min(arrivals[i + 4] - arrivals[i] for i in range(len(arrivals) - 4)) >= 4 * 0.9 * interval
    assert min(gaps) < 0.6  # requests overlapped: both workers were sending at once
    assert not [r for r in sandbox.sandbox.requests if r.status == 429]


def test_queued_leads_survive_a_redis_restart(relay_settings, sandbox, submissions, tmp_path: Path):
    from tests.e2e.conftest import Relay

    with redis_server_process(tmp_path / "redis") as server:
        relay = Relay(relay_settings.replace(redis_url=server.url), _client(server.url), tmp_path)
        ids = relay.post_leads(submissions(120))
        server.stop()
        server.start()
        relay = Relay(relay_settings.replace(redis_url=server.url), _client(server.url), tmp_path)
        assert relay.count(LeadStatus.QUEUED) == 120
        try:
            relay.start_worker("after-restart")
            relay.wait_delivered(120, timeout=20)
        finally:
            relay.stop_workers()
    assert set(sandbox.sandbox.delivered_external_ids()) == set(ids)


def _client(url: str):
    from redis import Redis

    return Redis.from_url(url)
