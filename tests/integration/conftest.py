"""Integration fixtures: the same `redis` fixture name, but a real Redis (the tests' own, flushed before and after)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from tests.realredis import owned_test_database


@pytest.fixture
def redis(test_redis_owned: None) -> Iterator[Redis]:
    with owned_test_database() as client:
        yield client
