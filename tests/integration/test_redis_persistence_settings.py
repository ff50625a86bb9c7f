"""The settings of Redis itself that the durability promise rests on (deploy/redis.conf), as workers check them."""

from __future__ import annotations

import logging
from pathlib import Path

from redis import Redis

from app.store import Store
from tests.realredis import redis_server_process


def test_a_redis_with_an_append_only_file_and_no_eviction_has_no_persistence_problem(tmp_path: Path):
    with redis_server_process(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        redis.config_set("maxmemory-policy", "noeviction")

        assert Store(redis).persistence_problems() == []


def test_a_redis_that_evicts_keys_or_keeps_no_append_only_file_is_named_as_losing_leads(tmp_path: Path):
    # ElastiCache's default volatile-lru evicts keys with a time to live; allkeys-lru evicts queued leads too.
    with redis_server_process(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        redis.config_set("maxmemory-policy", "allkeys-lru")
        redis.config_set("appendonly", "no")

        problems = Store(redis).persistence_problems()

    assert len(problems) == 2
    assert "maxmemory-policy allkeys-lru" in problems[0] and "noeviction" in problems[0]
    assert "appendonly no" in problems[1]


def test_a_worker_started_on_a_redis_that_evicts_keys_says_so_in_its_log(settings, tmp_path: Path, caplog):
    from workers.runner import run_worker

    with redis_server_process(tmp_path / "redis") as server:
        Redis.from_url(server.url).config_set("maxmemory-policy", "volatile-lru")
        with caplog.at_level(logging.ERROR, logger="workers.runner"):
            run_worker(settings.replace(redis_url=server.url), burst=True)

    assert any("maxmemory-policy volatile-lru" in r.getMessage() for r in caplog.records)
