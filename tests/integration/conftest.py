"""Integration fixtures: the same `redis` fixture name, but a real Redis (the tests' own, flushed before and after);
the Graph stand-in and Meta retrieval talking to it over loopback HTTP, of the `sources` a test module gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from tests.graphretrieval import retrieval_over_http
from tests.graphstub import GraphStub
from tests.realredis import owned_test_database
from workers.meta import MetaRetrieval


@pytest.fixture
def redis(test_redis_owned: None) -> Iterator[Redis]:
    with owned_test_database() as client:
        yield client


@pytest.fixture
def stub() -> GraphStub:
    return GraphStub()


@pytest.fixture
def retrieval(store, stub, sources, cipher, clock) -> Iterator[MetaRetrieval]:
    with retrieval_over_http(store, stub, sources, cipher, clock) as retrieval:
        yield retrieval
