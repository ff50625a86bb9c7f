"""The production web tier (`leadrelay web`: gunicorn, several processes) over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app.crypto import generate_key
from app.ports import free_port
from app.processes import reap_group
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.realredis import connect_or_fail, redis_url_for_tests
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


# With a metrics folder set (the Dockerfile and manifests set one), and without (as the README and Procfile run it).
@pytest.fixture(params=["metrics-dir-set", "metrics-dir-unset"])
def web_tier(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    redis = connect_or_fail(redis_url_for_tests())
    redis.flushdb()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    if request.param == "metrics-dir-set":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
        (tmp_path / "prometheus").mkdir()
    env = {
        **env,
        "PORT": str(port),
        "WEB_CONCURRENCY": "3",
        "REDIS_URL": redis_url_for_tests(),
        "LEADRELAY_ENCRYPTION_KEY": generate_key(),
        "LEADRELAY_SOURCE_KEYS": f"partner={SOURCE_KEY}",
        "LEADRELAY_OPS_TOKENS": f"alice={OPS_TOKEN}",
        "CARECYCLE_API_KEY": "cc_unused",
    }
    with open(tmp_path / "web.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "web"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            process_group=0,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/readyz"), timeout=60)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        # A worker still booting when the signal lands can miss it: the group is killed after a grace time.
        reap_group(process, 5)
        redis.flushdb()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _accepted(url: str) -> float:
    text = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"}, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "leadrelay_intake_leads_total" and sample.labels == {
                "source": "partner",
                "outcome": "accepted",
            }:
                return sample.value
    return 0.0


def test_metrics_add_up_across_gunicorn_processes(web_tier):
    with requests.Session() as session:
        for _ in range(30):
            response = session.post(f"{web_tier}/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
            assert response.status_code == 202

    # Whichever process answers the scrape, it reports every process's intake.
    assert {_accepted(web_tier) for _ in range(10)} == {30.0}


def test_web_tier_answers_with_request_ids_and_json_errors(web_tier):
    response = requests.get(f"{web_tier}/v1/stats", timeout=5)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert response.headers["X-Request-ID"]
