"""Intake on a Redis that runs out of memory (maxmemory with noeviction, as deploy/redis.conf ships it)."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from app import create_app
from app.models import LeadStatus
from app.store import Store
from tests.conftest import SOURCE_KEY
from tests.factories import make_submission
from tests.realredis import redis_server_process


def test_a_bulk_that_fills_redis_up_is_stored_whole_or_not_at_all(settings, tmp_path: Path):
    # A 503 tells the partner to send the bulk again: any lead of it already stored would then be delivered twice.
    with redis_server_process(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        relay = settings.replace(redis_url=server.url)
        client = create_app(relay, redis=redis).test_client()
        store = Store.from_settings(relay, redis)
        redis.config_set("maxmemory-policy", "noeviction")
        redis.config_set("maxmemory", int(redis.info("memory")["used_memory"]) + 100_000)
        bulk = [make_submission(notes="n" * 2000) for _ in range(200)]  # about 500 KB stored: it fills up midway

        response = client.post("/v1/leads", json={"leads": bulk}, headers={"X-Api-Key": SOURCE_KEY})

        stored = store.leads.status_counts()[LeadStatus.QUEUED]
        assert (response.status_code, stored) in {(202, 200), (503, 0)}, (response.status_code, stored)
