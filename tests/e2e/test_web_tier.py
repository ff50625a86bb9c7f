"""The production web tier (`leadrelay web`: gunicorn, several processes) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.e2e.webtier import running_web_tier
from tests.factories import make_submission


# With a metrics folder set (the Dockerfile and manifests set one), and without (as the README and Procfile run it).
@pytest.fixture(params=["metrics-dir-set", "metrics-dir-unset"])
def web_tier(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    settings = {"WEB_CONCURRENCY": "3", "CARECYCLE_API_KEY": "cc_unused"}
    if request.param == "metrics-dir-set":
        settings["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
        (tmp_path / "prometheus").mkdir()
    with running_web_tier(settings, tmp_path / "web.log") as url:
        yield url


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
