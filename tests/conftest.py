"""Fixtures shared by every suite: settings, an in-process Redis, the store, the app, a clock."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.client import Pipeline

from app import create_app
from app.config import Settings
from app.crypto import RecordCipher, generate_key
from app.logs import JsonFormatter
from app.store import Store
from tests.realredis import stop_unless_the_tests_own_their_database
from tests.support import FakeClock

SOURCE_KEY = "src-key-partner-0001"
OPS_TOKEN = "ops-token-alice-0001"
CARECYCLE_KEY = "cc_test_key"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by suite folder, so `-m "not e2e"` and friends select them."""
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def relay_logging_undone() -> Iterator[None]:
    """A test that runs a command leaves logging as it found it: a command sends every log line to the stderr of
    the moment as JSON, at INFO, and later tests would otherwise capture lines below their own level and write
    to a stderr pytest has closed."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def test_redis_owned() -> None:
    """The integration and end-to-end tests' Redis database, checked before the first test that uses it: a database
    holding keys they did not write stops the run, untouched."""
    stop_unless_the_tests_own_their_database()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        carecycle_api_key=CARECYCLE_KEY,
        carecycle_base_url="http://127.0.0.1:9",
        leadrelay_source_keys={SOURCE_KEY: "partner"},
        leadrelay_ops_tokens={OPS_TOKEN: "alice"},
        leadrelay_encryption_key=generate_key(),
        leadrelay_retry_base_seconds=1.0,
        leadrelay_retry_max_delay_seconds=60.0,
        leadrelay_pause_probe_seconds=10.0,
        carecycle_read_timeout_seconds=2.0,
        carecycle_connect_timeout_seconds=1.0,
        leadrelay_visibility_timeout_seconds=30.0,
    )


@pytest.fixture
def redis() -> Iterator[fakeredis.FakeRedis]:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def round_trips(redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Round trips to Redis from now on: each direct command, and each pipeline sent."""
    sent: list[str] = []
    direct = redis.execute_command

    def execute_command(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return direct(*args, **options)

    pipeline_execute = Pipeline.execute

    def execute(self: Pipeline, *args: Any, **options: Any) -> Any:
        sent.append(f"PIPELINE({len(self.command_stack)})")
        return pipeline_execute(self, *args, **options)

    monkeypatch.setattr(redis, "execute_command", execute_command)
    monkeypatch.setattr(Pipeline, "execute", execute)
    return sent


@pytest.fixture
def store(settings: Settings, redis: fakeredis.FakeRedis) -> Store:
    return Store.from_settings(settings, redis)


@pytest.fixture
def cipher(settings: Settings) -> RecordCipher:
    return RecordCipher(settings.leadrelay_encryption_key)


@pytest.fixture
def app(settings: Settings, redis: fakeredis.FakeRedis, clock: FakeClock) -> Flask:
    return create_app(settings, redis=redis, clock=clock)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def bare_server() -> Iterator[tuple[int, list[bytes]]]:
    """A port whose server answers one connection with the bytes listed (none: it closes once the request came): an
    outside service failing below HTTP, for its client's tests."""
    replies: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(replies[0] if replies else b"")

        threading.Thread(target=serve, daemon=True).start()
        yield listener.getsockname()[1], replies


@pytest.fixture
def unresolvable_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No host name resolves, as where DNS knows none of them: for an outside service's client's tests."""

    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
