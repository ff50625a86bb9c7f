"""The Redis store: the single source of truth for leads, the delivery queue and the shared budget."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import ResponseError

from app.config import Settings
from app.store import keys
from app.store.audit import AuditLog
from app.store.batches import BatchStore
from app.store.codec import text
from app.store.fetches import FetchStore
from app.store.fingerprints import FingerprintSecrets
from app.store.index import LeadIndex
from app.store.leads import LeadNotFoundError, LeadStore
from app.store.limiter import Lanes, RequestBudget
from app.store.metrics import DeliveryMetrics, IntakeHandover
from app.store.outage import CareCycleOutage
from app.store.pauses import PagePauses, PauseSwitch, RefusedFormListings
from app.store.presence import WorkerPresence
from app.store.retention import Retention, RetentionStore
from app.store.retries import RetryStore
from app.store.scripts import Scripts
from app.store.throttle import Throttle
from app.store.unrouted import UnroutedChanges

SCHEMA_VERSION = "1"
READINESS_PROBE_TTL_SECONDS = 60

__all__ = ["LeadNotFoundError", "Store", "SCHEMA_VERSION"]


class Store:
    """Every stored thing the relay has, over one Redis connection."""

    def __init__(
        self,
        redis: Redis,
        *,
        rate_limit_per_min: int = 60,
        lanes: int = 1,
        lane_ttl_seconds: float = 120,
        retention: Retention | None = None,
    ) -> None:
        self.redis = redis
        scripts = Scripts.register(redis)
        self.leads = LeadStore(redis, scripts)
        self.batches = BatchStore(redis, scripts)
        self.budget = RequestBudget(redis, scripts, rate_limit_per_min)
        self.pause = PauseSwitch(redis, scripts)
        self.outage = CareCycleOutage(redis, scripts)
        self.fetches = FetchStore(redis, scripts)
        self.fetch_pause = PauseSwitch(redis, scripts, keys.fetch_pause_key())
        self.page_pauses = PagePauses(redis, scripts)
        self.refused_forms = RefusedFormListings(redis)
        self.lanes = Lanes(redis, lanes, lane_ttl_seconds)
        self.throttle = Throttle(redis, scripts)
        self.metrics = DeliveryMetrics(redis)
        self.intake_handover = IntakeHandover(redis, scripts)
        self.index = LeadIndex(redis)
        self.retries = RetryStore(redis, scripts)
        self.retention = RetentionStore(redis, scripts, retention or Retention())
        self.audit = AuditLog(redis)
        self.presence = WorkerPresence(redis)
        self.fingerprints = FingerprintSecrets(redis)
        self.unrouted = UnroutedChanges(redis)

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
            retention=Retention(settings.record_retention_seconds(), settings.retention_seconds()),
        )

    def mark_schema_current(self) -> None:
        """Record that stored data follows this version's layout (set by workers and web at start)."""
        self.redis.set(keys.schema_version_key(), SCHEMA_VERSION, nx=True)

    def accepts_writes(self, now: float) -> None:
        """Write a short-lived key: raises `RedisError` when Redis refuses writes (full under noeviction, a
        failed snapshot stopping writes, a read-only replica behind a stale endpoint), as intake would find."""
        self.redis.set(keys.readiness_probe_key(), repr(now), ex=READINESS_PROBE_TTL_SECONDS)

    def persistence_problems(self) -> list[str]:
        """What in Redis's own settings breaks the promise that a lead answered 2xx is kept: eviction, no memory
        limit, or no append-only file. Empty when nothing does, or when Redis does not tell (INFO refused)."""
        try:
            memory, persistence = self.redis.info("memory"), self.redis.info("persistence")
        except ResponseError:
            return []
        problems = []
        policy = memory.get("maxmemory_policy")
        if policy not in (None, "noeviction"):
            problems.append(
                f"Redis evicts keys when full (maxmemory-policy {policy}): queued leads can be lost;"
                " set maxmemory-policy noeviction, as deploy/redis.conf does"
            )
        # noeviction refuses writes only past a maxmemory; any nonzero one (a managed Redis sets its own) is kept.
        if memory.get("maxmemory") == 0:
            problems.append(
                "Redis has no memory limit (maxmemory 0): instead of refusing writes when full, it grows until the"
                " kernel kills it, losing its last second of accepted leads; set maxmemory to half to three quarters"
                " of the memory its machine can give Redis (deploy/redis.conf and the README explain the sizing)"
            )
        if persistence.get("aof_enabled") == 0:
            problems.append(
                "Redis keeps no append-only file (appendonly no): a restart loses the leads taken since its last"
                " snapshot; set appendonly yes, as deploy/redis.conf does"
            )
        return problems

    def is_schema_current(self) -> bool:
        """True when stored data is absent or in this version's layout."""
        stored = self.redis.get(keys.schema_version_key())
        return stored is None or text(stored) == SCHEMA_VERSION
