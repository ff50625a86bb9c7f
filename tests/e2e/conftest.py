"""End-to-end fixtures: a real Redis, the sandbox served over loopback, worker processes, the relay app."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq import Worker

from app import create_app
from app.config import Settings
from app.models import LeadStatus
from app.processes import signal_group
from app.sandbox import Sandbox, SandboxServer
from app.store import Store
from tests.conftest import CARECYCLE_KEY, OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.realredis import owned_test_database, redis_url_for_tests
from tests.support import start_worker_process, wait_until


@pytest.fixture
def real_redis(test_redis_owned: None) -> Iterator[Redis]:
    with owned_test_database() as client:
        yield client


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox({CARECYCLE_KEY}, rate_limit_per_min=60)) as server:
        yield server


@pytest.fixture
def relay_settings(settings: Settings, sandbox: SandboxServer, real_redis: Redis) -> Settings:
    return settings.replace(
        redis_url=redis_url_for_tests(),
        carecycle_base_url=sandbox.url,
        leadrelay_retry_base_seconds=0.2,
        leadrelay_retry_max_delay_seconds=1.0,
        leadrelay_pause_probe_seconds=1.0,
        carecycle_connect_timeout_seconds=1.0,
        carecycle_read_timeout_seconds=1.0,
        leadrelay_visibility_timeout_seconds=7.0,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings.from_env()` in a child process equal `settings`."""
    env = {name: value for name, value in settings.environ.items() if name.isupper()}
    for field in dataclasses.fields(settings):
        if field.name == "environ":
            continue
        value = getattr(settings, field.name)
        if isinstance(value, dict):
            value = ",".join(f"{name}={secret}" for secret, name in value.items())
        env[field.name.upper()] = str(value)
    return env


class Relay:
    """The relay under test: its web app in-process, workers as real processes, and the store."""

    def __init__(self, settings: Settings, redis: Redis, log_dir: Path) -> None:
        self.settings = settings
        self.redis = redis
        self.app = create_app(settings, redis=redis)
        self.client: FlaskClient = self.app.test_client()
        self.store = Store.from_settings(settings, redis)
        self.log_dir = log_dir
        self.workers: list[subprocess.Popen[bytes]] = []

    def post_leads(self, submissions: list[dict[str, Any]]) -> list[str]:
        """Post leads in bulk requests of up to 200; returns their ids."""
        ids = []
        for start in range(0, len(submissions), 200):
            chunk = submissions[start : start + 200]
            response = self.client.post("/v1/leads", json={"leads": chunk}, headers={"X-Api-Key": SOURCE_KEY})
            assert response.status_code == 202, response.json
            ids += [item["id"] for item in response.json["results"]]
        return ids

    def post_lead(self, **overrides: Any) -> str:
        response = self.client.post("/v1/leads", json=make_submission(**overrides), headers={"X-Api-Key": SOURCE_KEY})
        assert response.status_code == 202, response.json
        return str(response.json["id"])

    def status(self, lead_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert response.status_code == 200
        return dict(response.json)

    def stats(self) -> dict[str, Any]:
        response = self.client.get("/v1/stats", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert response.status_code == 200
        return dict(response.json)

    def count(self, status: LeadStatus) -> int:
        return self.store.leads.status_counts()[status]

    def wait_delivered(self, count: int, timeout: float = 30) -> None:
        wait_until(lambda: self.count(LeadStatus.DELIVERED) >= count, timeout=timeout)

    def start_worker(self, name: str, **overrides: Any) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_env(self.settings.replace(**overrides) if overrides else self.settings)}
        process = start_worker_process(name, env, self.log_dir / f"{name}.log")
        self.workers.append(process)
        wait_until(lambda: any(w.name == name for w in Worker.all(connection=self.redis)), timeout=30)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group, as a crashed machine would."""
        signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_workers(self) -> None:
        for process in self.workers:
            self.kill(process)


@pytest.fixture
def relay(relay_settings: Settings, real_redis: Redis, tmp_path: Path) -> Iterator[Relay]:
    relay = Relay(relay_settings, real_redis, tmp_path)
    yield relay
    relay.stop_workers()


@pytest.fixture
def submissions() -> Callable[[int], list[dict[str, Any]]]:
    return lambda count: [make_submission() for _ in range(count)]
