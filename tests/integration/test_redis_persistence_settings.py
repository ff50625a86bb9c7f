"""The settings of Redis itself that the durability promise rests on (deploy/redis.conf), as workers check them."""

from __future__ import annotations

import logging
from pathlib import Path

from redis import Redis

from app.store import Store
from tests.realredis import redis_server_process


def test_a_redis_with_an_append_only_file_a_memory_limit_and_no_eviction_has_no_persistence_problem(tmp_path: Path):
    with redis_server_process(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        redis.config_set("maxmemory-policy", "noeviction")
        redis.config_set("maxmemory", "2gb")

        assert Store(redis).persistence_problems() == []


def test_a_redis_that_evicts_keys_or_keeps_no_append_only_file_is_named_as_losing_leads(tmp_path: Path):
    # ElastiCache's default volatile-lru evicts keys with a time to live; allkeys-lru evicts queued leads too.
    with redis_server_process(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        redis.config_set("maxmemory-policy", "allkeys-lru")
        redis.config_set("maxmemory", "2gb")
        redis.config_set("appendonly", "no")

        problems = Store(redis).persistence_problems()

    assert len(problems) == 2
    assert "maxmemory-policy allkeys-lru" in problems[0] and "noeviction" in problems[0]
    assert "appendonly no" in problems[1]


def test_a_redis_without_a_memory_limit_is_named_as_growing_until_the_kernel_kills_it(tmp_path: Path):
    # maxmemory 0 is Redis's default: noeviction then refuses nothing, and the OOM killer ends Redis instead.
    with redis_server_process(tmp_path / "redis") as server:
        problems = Store(Redis.from_url(server.url)).persistence_problems()

    assert len(problems) == 1
    assert "no memory limit (maxmemory 0)" in problems[0] and "kernel kills it" in problems[0]
    assert "set maxmemory to half to three quarters" in problems[0]


def test_the_embedded_redis_of_leadrelay_dev_and_the_bench_has_no_persistence_problem():
    from app.bench import private_redis  # started with the options `leadrelay dev` gives its own Redis

    with private_redis() as url:
        assert Store(Redis.from_url(url)).persistence_problems() == []


def test_a_worker_started_on_a_redis_that_evicts_keys_says_so_in_its_log(settings, tmp_path: Path, caplog):
    from workers.runner import run_worker

    with redis_server_process(tmp_path / "redis") as server:
        Redis.from_url(server.url).config_set("maxmemory-policy", "volatile-lru")
        with caplog.at_level(logging.ERROR, logger="workers.runner"):
            run_worker(settings.replace(redis_url=server.url), burst=True)

    assert any("maxmemory-policy volatile-lru" in r.getMessage() for r in caplog.records)


def test_a_worker_started_on_a_redis_without_a_memory_limit_says_so_in_its_log(settings, tmp_path: Path, caplog):
    from workers.runner import run_worker

    with redis_server_process(tmp_path / "redis") as server:
        with caplog.at_level(logging.ERROR, logger="workers.runner"):
            run_worker(settings.replace(redis_url=server.url), burst=True)

    assert any("no memory limit (maxmemory 0)" in r.getMessage() for r in caplog.records)
