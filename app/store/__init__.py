"""The Redis store: the single source of truth for leads, the delivery queue and the shared budget."""

from __future__ import annotations

from redis import Redis

from app.config import Settings
from app.store import keys
from app.store.batches import BatchStore
from app.store.codec import text
from app.store.leads import LeadNotFoundError, LeadStore
from app.store.limiter import Lanes, PauseSwitch, RequestBudget
from app.store.metrics import DeliveryMetrics
from app.store.scripts import Scripts

SCHEMA_VERSION = "1"

__all__ = ["LeadNotFoundError", "Store", "SCHEMA_VERSION"]


class Store:
    """Every stored thing the relay has, over one Redis connection."""

    def __init__(
        self, redis: Redis, *, rate_limit_per_min: int = 60, lanes: int = 1, lane_ttl_seconds: float = 120
    ) -> None:
        self.redis = redis
        scripts = Scripts.register(redis)
        self.leads = LeadStore(redis, scripts)
        self.batches = BatchStore(redis, scripts)
        self.budget = RequestBudget(redis, scripts, rate_limit_per_min)
        self.pause = PauseSwitch(redis, scripts)
        self.lanes = Lanes(redis, lanes, lane_ttl_seconds)
        self.metrics = DeliveryMetrics(redis)

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis) -> Store:
        """The store as both web and workers configure it."""
        return cls(
            redis,
            rate_limit_per_min=settings.carecycle_rate_limit_per_min,
            lanes=settings.leadrelay_delivery_lanes,
            # A lease outliving its job (a killed worker) blocks its lane this long; a lease expiring
            # during a long step only lets a second job join the lane, which is harmless.
            lane_ttl_seconds=settings.leadrelay_visibility_timeout_seconds,
        )

    def mark_schema_current(self) -> None:
        """Record that stored data follows this version's layout (set by workers and web at start)."""
        self.redis.set(keys.schema_version_key(), SCHEMA_VERSION, nx=True)

    def is_schema_current(self) -> bool:
        """True when stored data is absent or in this version's layout."""
        stored = self.redis.get(keys.schema_version_key())
        return stored is None or text(stored) == SCHEMA_VERSION
