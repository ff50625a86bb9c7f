"""Integration fixtures: the same `redis` fixture name, but a real Redis (flushed before and after)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from tests.realredis import connect_or_fail, redis_url_for_tests


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = connect_or_fail(redis_url_for_tests())
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
