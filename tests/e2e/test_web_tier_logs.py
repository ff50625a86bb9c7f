"""gunicorn's own log lines, with its access log and debug level on as an operator may set them, carry
no personal data, client address or secret, even for requests too malformed for the relay to see."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.crypto import generate_key
from app.ports import free_port
from app.processes import reap_group
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.realredis import connect_or_fail, redis_url_for_tests
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
VERIFY_TOKEN = "verify-token-5d9e1c"
PERSONAL = ["Zebedee", "Quixotte", "zebedee.q@example.com", "3125550177", "1EG4TE5MK73"]
BODY = b'{"first_name": "Zebedee", "last_name": "Quixotte", "email": "zebedee.q@example.com", "phone": "3125550177"}'


@pytest.fixture
def logged_web_tier(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    redis = connect_or_fail(redis_url_for_tests())
    redis.flushdb()
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"},
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_ACCESS_LOG": "-",
        "GUNICORN_LOG_LEVEL": "debug",
        "REDIS_URL": redis_url_for_tests(),
        "LEADRELAY_ENCRYPTION_KEY": generate_key(),
        "LEADRELAY_SOURCE_KEYS": f"partner={SOURCE_KEY}",
        "LEADRELAY_OPS_TOKENS": f"alice={OPS_TOKEN}",
        "FACEBOOK_VERIFY_TOKEN": VERIFY_TOKEN,
        "FACEBOOK_APP_SECRET": "app-secret-unused",
    }
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "web"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log, process_group=0
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/readyz"), timeout=60)
        yield url, log_path
    finally:
        process.send_signal(signal.SIGINT)
        reap_group(process, 5)
        redis.flushdb()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _send_raw(url: str, request: bytes) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        conn.recv(4096)


def test_gunicorn_logs_carry_no_personal_data_client_address_or_secret(logged_web_tier):
    url, log_path = logged_web_tier
    # A body gunicorn itself fails to read (no valid chunk size): its warning used to quote it.
    _send_raw(url, b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + BODY + b"\r\n")
    # A request line gunicorn refuses.
    _send_raw(url, b"GET /v1/leads?email=zebedee.q@example.com HTTP/1.1 junk\r\nHost: x\r\n\r\n")
    # Meta's handshake carries the verify token in its query; a landing page's URL carries the visitor.
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "7"}
    assert requests.get(f"{url}/v1/webhooks/facebook", params=query, timeout=5).status_code == 200
    referer = "https://landing.example.com/?name=Zebedee+Quixotte&phone=3125550177"
    requests.post(f"{url}/v1/forms/zebedee.q@example.com", data=BODY, headers={"Referer": referer}, timeout=5)
    requests.post(f"{url}/v1/leads", data=BODY, headers={"X-Api-Key": SOURCE_KEY}, timeout=5)

    text = log_path.read_text()
    assert "Invalid request: Invalid chunk size" in text  # the warning is kept, its quoted body is not
    assert '"GET" 200' in text and "request_id=" in text  # the access log is on
    leaked = [value for value in [*PERSONAL, VERIFY_TOKEN, SOURCE_KEY] if value.lower() in text.lower()]
    assert leaked == []
    assert "ip=" not in text
