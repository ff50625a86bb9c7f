"""The web tier: `create_app()` wires settings, Redis, store and blueprints; nothing happens at import."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from werkzeug.middleware.proxy_fix import ProxyFix

from app.clock import Clock, SystemClock
from app.config import Settings
from app.crypto import RecordCipher
from app.intake import Intake
from app.meta import MetaIntake, UnsetSettingAlarm
from app.queues import enqueue_fetches, wake_delivery
from app.schemas import geo
from app.services import EXTENSION_NAME, Services
from app.sources import SourceRegistry, load_configured_sources
from app.startup import WEB_REQUIREMENTS
from app.store import Store

MAX_CONTENT_LENGTH_BYTES = 1024 * 1024


# A request waits at most this long for Redis (to connect, then for each reply), and tries once more at
# once only on a dropped connection (a pooled one Redis closed): with a Redis that hangs, intake answers 503
# within 2 s and the threads are soon free for /healthz (redis-py waits 5 s). `?socket_timeout=` in
# REDIS_URL overrides it.
WEB_REDIS_TIMEOUT_SECONDS = 2.0
WEB_REDIS_RETRIES = 1


def web_redis(url: str) -> Redis:
    """The web tier's Redis client: short timeouts, one immediate retry."""
    return Redis.from_url(
        url,
        socket_connect_timeout=WEB_REDIS_TIMEOUT_SECONDS,
        socket_timeout=WEB_REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), WEB_REDIS_RETRIES, supported_errors=(RedisConnectionError,)),
    )


def create_app(
    settings: Settings | None = None,
    *,
    redis: Redis | None = None,
    clock: Clock | None = None,
    sources: SourceRegistry | None = None,
) -> Flask:
    """Build the relay's web app from settings (default: the environment) and sources (default: the file)."""
    from app.api import register_blueprints, register_response_headers
    from app.errors import register_error_handlers
    from app.requestid import register_request_id

    settings = settings or Settings.from_env()
    settings.require(*WEB_REQUIREMENTS.always)
    redis = redis if redis is not None else web_redis(settings.redis_url)
    clock = clock or SystemClock()
    store = Store.from_settings(settings, redis)
    geo.warm_up()
    if sources is None:
        sources = load_configured_sources(settings)
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    intake = Intake.configured(store, cipher, clock, lambda: wake_delivery(redis, store.lanes), settings, sources)
    app = Flask(__name__, static_folder=None)
    # A path with an empty segment names nothing: werkzeug would redirect it (308, body and all) to the path with
    # the slashes merged, so `POST /v1/leads//retry` (a single retry with its id missing) became a bulk retry.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH_BYTES
    if settings.leadrelay_trusted_proxy_hops:
        # Only behind a known number of proxies is X-Forwarded-For more than a client's say-so.
        hops = settings.leadrelay_trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_NAME] = Services(
        settings=settings,
        redis=redis,
        store=store,
        cipher=cipher,
        intake=intake,
        sources=sources,
        clock=clock,
        meta=MetaIntake(store, sources, clock, lambda leases: enqueue_fetches(redis, leases)),
        meta_unset_alarm=UnsetSettingAlarm(clock.now),
    )
    register_request_id(app)
    register_error_handlers(app, clock.now)
    register_blueprints(app)
    register_response_headers(app)
    return app
