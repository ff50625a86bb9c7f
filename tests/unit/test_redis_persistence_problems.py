"""What a worker names at start about Redis's own settings, read from INFO (fakeredis has no INFO: it is given)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from app.store import Store

SHIPPED_MEMORY = {"maxmemory": 2 * 1024**3, "maxmemory_policy": "noeviction"}  # deploy/redis.conf with --maxmemory 2gb
SHIPPED_PERSISTENCE = {"aof_enabled": 1}


def problems_with(redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch, memory: dict[str, Any]) -> list[str]:
    """The problems a worker names of a Redis whose INFO tells `memory`, its persistence set up as shipped."""
    sections = {"memory": memory, "persistence": SHIPPED_PERSISTENCE}
    monkeypatch.setattr(redis, "info", lambda section: sections[section])
    return Store(redis).persistence_problems()


def test_a_redis_set_up_as_shipped_has_no_persistence_problem(redis, monkeypatch):
    assert problems_with(redis, monkeypatch, SHIPPED_MEMORY) == []


def test_a_redis_without_a_memory_limit_is_named_with_what_to_set(redis, monkeypatch):
    problems = problems_with(redis, monkeypatch, {**SHIPPED_MEMORY, "maxmemory": 0})

    assert len(problems) == 1
    assert "no memory limit (maxmemory 0)" in problems[0]
    assert "set maxmemory to half to three quarters of the memory its machine can give Redis" in problems[0]


@pytest.mark.parametrize("limit", [1, 25 * 1024**2, 64 * 1024**3], ids=["tiny", "25mb", "64gb"])
def test_any_memory_limit_a_managed_redis_sets_is_no_problem(redis, monkeypatch, limit):
    assert problems_with(redis, monkeypatch, {**SHIPPED_MEMORY, "maxmemory": limit}) == []


def test_a_redis_whose_info_tells_no_memory_limit_is_not_named(redis, monkeypatch):
    assert problems_with(redis, monkeypatch, {"maxmemory_policy": "noeviction"}) == []
