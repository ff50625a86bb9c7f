"""`leadrelay worker` against a real Redis: a name a live worker holds, when the worker loop starts again, and what a
worker notes or forgets as it starts (from when leads are counted by source, unconfigured Meta forms)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest
from rq import SimpleWorker

from app.cli import main
from app.config import Settings
from app.crypto import generate_key
from app.ops import StatsQuery, collect_stats
from app.store import Store, keys
from app.store.presence import WorkerPresence
from tests.realredis import redis_url_for_tests
from workers import runner


@pytest.fixture
def environment(monkeypatch):
    """The process environment with no relay setting in it but the test Redis."""
    url = redis_url_for_tests()
    for setting in dataclasses.fields(Settings):
        monkeypatch.delenv(setting.name.upper(), raising=False)
    monkeypatch.setenv("REDIS_URL", url)
    return monkeypatch


def test_a_worker_name_a_live_worker_holds_is_refused_before_the_worker_starts(redis, environment, capsys):
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    redis.hset("rq:worker:busy-name", "birth", "2026-11-26T00:00:00Z")  # as a running RQ worker registers
    WorkerPresence(redis).mark_alive("busy-name", 30, 3660)  # and its ticker keeps it alive

    assert main(["worker", "--name", "busy-name", "--burst"]) == 2
    assert "--name: a worker named 'busy-name' is already running" in capsys.readouterr().err


def test_a_worker_whose_loop_quit_on_an_error_waits_for_redis_and_goes_on(redis, settings, monkeypatch):
    loops = []

    def work(worker: SimpleWorker, **kwargs: object) -> bool:
        loops.append(worker.name)
        if len(loops) == 1:
            return False  # as RQ's loop ends when Redis went away while a job ran
        worker._shutdown_requested_date = datetime.now(UTC)  # then a SIGTERM while it waits for jobs
        return False

    monkeypatch.setattr(SimpleWorker, "work", work)

    runner.run_worker(settings.replace(redis_url=redis_url_for_tests()), name="restarting")

    assert loops == ["restarting", "restarting"]


def test_a_worker_stopped_by_a_signal_or_at_the_end_of_a_burst_does_not_start_again(redis, settings, monkeypatch):
    loops = []
    monkeypatch.setattr(SimpleWorker, "work", lambda worker, **kwargs: loops.append(kwargs["burst"]) or True)

    runner.run_worker(settings.replace(redis_url=redis_url_for_tests()), burst=True)

    assert loops == [True]


def test_a_worker_starting_over_leads_held_already_notes_from_when_leads_are_counted_by_source(
    redis, settings, monkeypatch
):
    monkeypatch.setattr(SimpleWorker, "work", lambda worker, **kwargs: True)
    redis.zadd(keys.leads_index_key(), {"earlier": 1.0})  # a lead an earlier release took in

    runner.run_worker(settings.replace(redis_url=redis_url_for_tests()), burst=True)

    assert float(redis.get(keys.source_counts_since_key())) > 1.0


def test_a_worker_started_with_no_facebook_source_forgets_its_forms_catching_up_and_refused(
    redis, settings, monkeypatch
):
    store = Store(redis)
    store.fetches.note_backfill_listed("200000000000002", time.time() - 30 * 86400)  # its source dropped since
    store.refused_forms.refused("200000000000002", "Graph API 403 code 200: (#200) Requires pages_manage_ads")
    monkeypatch.setattr(SimpleWorker, "work", lambda worker, **kwargs: True)

    runner.run_worker(settings.replace(redis_url=redis_url_for_tests()), burst=True)  # no backfill runs: no token

    stats = collect_stats(StatsQuery(store, 60, time.time()))
    assert stats["backfillCatchingUp"] == {} and stats["retrievalRefusedForms"] == {}
