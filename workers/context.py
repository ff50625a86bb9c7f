"""A worker's wiring: Redis, store, clients and clock built once from settings."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from redis import Redis

from app.clock import Clock, SystemClock
from app.config import Settings
from app.crypto import RecordCipher
from app.intake import Intake
from app.meta import MetaIntake
from app.queues import enqueue_fetches, wake_delivery
from app.sources import load_configured_sources
from app.startup import WORKER_REQUIREMENTS
from app.store import Store
from workers.carecycle import CareCycleClient
from workers.delivery import Deliverer
from workers.graph import GraphClient
from workers.meta import MetaRetrieval, RetrievalSettings

# The store's commands and job wake-ups wait at most this long for Redis (to connect, then for each reply): a
# Redis that stopped answering is reported by the ticker, and the worker goes on as soon as Redis is back,
# instead of standing silent for RQ's wait for a job (7 minutes), which RQ sets on its own client only.
# `?socket_timeout=` in REDIS_URL overrides it. Every command the worker sends is safe to have run when its
# reply is lost: a batch it claimed is taken back after the visibility timeout, and settling is idempotent.
WORKER_REDIS_TIMEOUT_SECONDS = 10.0


def worker_redis(url: str) -> Redis:
    """The Redis client of the store and of the jobs a worker queues (RQ's loop has one of its own)."""
    return Redis.from_url(
        url, socket_connect_timeout=WORKER_REDIS_TIMEOUT_SECONDS, socket_timeout=WORKER_REDIS_TIMEOUT_SECONDS
    )


@dataclass
class WorkerContext:
    """Everything a job needs, built by `build_context`."""

    settings: Settings
    redis: Redis
    store: Store
    carecycle: CareCycleClient
    deliverer: Deliverer
    clock: Clock
    meta: MetaRetrieval
    cipher: RecordCipher
    # Set once the worker is asked to stop (a SIGTERM's warm shutdown): a running delivery job ends its slice.
    stopping: threading.Event = field(default_factory=threading.Event)


def build_context(settings: Settings, *, redis: Redis | None = None, clock: Clock | None = None) -> WorkerContext:
    """Wire a worker from settings; `redis` and `clock` may be given (tests)."""
    settings.require(*WORKER_REQUIREMENTS.always)
    redis = redis if redis is not None else worker_redis(settings.redis_url)
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
    meta = _build_retrieval(settings, redis, store, cipher, clock)
    return WorkerContext(settings, redis, store, client, deliverer, clock, meta=meta, cipher=cipher)


def _build_retrieval(
    settings: Settings, redis: Redis, store: Store, cipher: RecordCipher, clock: Clock
) -> MetaRetrieval:
    """Meta retrieval with its Graph client and the sources file (a bad one stops the worker at start)."""
    sources = load_configured_sources(settings)
    graph = GraphClient(
        settings.facebook_graph_url,
        settings.facebook_graph_version,
        settings.facebook_access_token,
        app_secret=settings.facebook_app_secret,
        connect_timeout=settings.facebook_connect_timeout_seconds,
        read_timeout=settings.facebook_read_timeout_seconds,
    )
    wake = lambda: wake_delivery(redis, store.lanes)  # noqa: E731 - a named one-liner reads better here
    intake = Intake.configured(store, cipher, clock, wake, settings, sources)
    admission = MetaIntake(store, sources, clock, lambda leases: enqueue_fetches(redis, leases))
    retrieval_settings = RetrievalSettings(
        max_age_seconds=settings.leadrelay_max_age_hours * 3600,
        retry_base_seconds=settings.leadrelay_retry_base_seconds,
        retry_max_delay_seconds=settings.leadrelay_retry_max_delay_seconds,
        probe_interval_seconds=settings.leadrelay_pause_probe_seconds,
        backfill_interval_seconds=settings.facebook_backfill_minutes * 60,
        has_access_token=bool(settings.facebook_access_token),
    )
    meta = MetaRetrieval(
        store, graph, intake, admission, sources, cipher, retrieval_settings, clock, wake, random.Random()
    )
    return meta


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
