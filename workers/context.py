"""A worker's wiring: Redis, store, clients and clock built once from settings."""

from __future__ import annotations

import random
from dataclasses import dataclass

from redis import Redis

from app.clock import Clock, SystemClock
from app.config import Settings
from app.crypto import RecordCipher
from app.store import Store
from workers.carecycle import CareCycleClient
from workers.delivery import Deliverer


@dataclass
class WorkerContext:
    """Everything a job needs, built by `build_context`."""

    settings: Settings
    redis: Redis
    store: Store
    carecycle: CareCycleClient
    deliverer: Deliverer
    clock: Clock


def build_context(settings: Settings, *, redis: Redis | None = None, clock: Clock | None = None) -> WorkerContext:
    """Wire a worker from settings; `redis` and `clock` may be given (tests)."""
    settings.require("carecycle_api_key", "leadrelay_encryption_key")
    redis = redis if redis is not None else Redis.from_url(settings.redis_url)
    clock = clock or SystemClock()
    store = Store.from_settings(settings, redis)
    client = CareCycleClient(
        settings.carecycle_base_url,
        settings.carecycle_api_key,
        connect_timeout=settings.carecycle_connect_timeout_seconds,
        read_timeout=settings.carecycle_read_timeout_seconds,
    )
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    deliverer = Deliverer(store, client, cipher, settings, clock, random.Random())
    return WorkerContext(settings, redis, store, client, deliverer, clock)


_current: WorkerContext | None = None


def use_context(context: WorkerContext) -> None:
    """Make `context` the one jobs in this process run with (set by the worker command and tests)."""
    global _current
    _current = context


def current_context() -> WorkerContext:
    """The context set by `use_context`, else one built from the environment on first use."""
    global _current
    if _current is None:
        _current = build_context(Settings.from_env())
    return _current
