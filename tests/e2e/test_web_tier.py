"""The production web tier (`leadrelay web`: gunicorn, several processes) over real HTTP."""

from __future__ import annotations

import json
import socket
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
def web_tier(tmp_path: Path, request: pytest.FixtureRequest, test_redis_owned: None) -> Iterator[str]:
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


def _answer_to_raw(url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """The status line, headers and body answered to bytes sent as they are (no client would send them)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "field"),
    [
        pytest.param(b"GET /v1/leads?email=zebedee.q@example.com HTTP/1.1 junk\r\nHost: x\r\n\r\n", 400, "request"),
        pytest.param(b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-Zebedee Quixotte: 1\r\n\r\n", 400, "request"),
        pytest.param(b"GET /v1/leads?q=" + b"z" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "url"),
    ],
    ids=["bad-version", "header-name-with-a-space", "request-line-too-long"],
)
def test_a_request_too_malformed_for_the_relay_is_still_answered_with_a_json_error_and_a_request_id(
    web_tier, request_bytes, status, field
):
    status_line, headers, body = _answer_to_raw(web_tier, request_bytes)

    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert headers["content-type"] == "application/json" and headers["x-request-id"]
    assert headers["x-content-type-options"] == "nosniff"  # as every answer the relay makes
    error = json.loads(body)["error"]
    assert list(error["fields"]) == [field] and error["fields"][field][0].startswith("expected ")
    assert not any(word in body.decode() for word in ("zebedee", "Zebedee", "Quixotte", "junk", "zzz"))
