"""gunicorn's own log lines, with its access log and debug level on as an operator may set them, carry
no personal data, client address or secret, even for requests too malformed for the relay to see."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import SOURCE_KEY
from tests.e2e.webtier import running_web_tier

VERIFY_TOKEN = "verify-token-5d9e1c"
PERSONAL = ["Zebedee", "Quixotte", "zebedee.q@example.com", "3125550177", "1EG4TE5MK73"]
BODY = b'{"first_name": "Zebedee", "last_name": "Quixotte", "email": "zebedee.q@example.com", "phone": "3125550177"}'


@pytest.fixture
def logged_web_tier(tmp_path: Path, test_redis_owned: None) -> Iterator[tuple[str, Path]]:
    settings = {
        "WEB_CONCURRENCY": "1",
        "GUNICORN_ACCESS_LOG": "-",
        "GUNICORN_LOG_LEVEL": "debug",
        "FACEBOOK_VERIFY_TOKEN": VERIFY_TOKEN,
        "FACEBOOK_APP_SECRET": "app-secret-unused",
    }
    with running_web_tier(settings, tmp_path / "web.log", log_stdout=True) as url:
        yield url, tmp_path / "web.log"


def _log_once_it_says(log_path: Path, words: str, seconds: float = 5.0) -> str:
    """The log's text once it holds `words` (or after `seconds`): the gunicorn worker that refused a request may
    write its line after another worker answered the next one."""
    deadline = time.monotonic() + seconds
    while words not in (text := log_path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


def _send_raw(url: str, request: bytes, *, hang_up: bool = False) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        if hang_up:  # a client gone before its headers ended (a dropped mobile connection)
            conn.shutdown(socket.SHUT_WR)
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
    # gunicorn's debug line for it quoted the headers read so far.
    _send_raw(
        url, b"POST /v1/leads?phone=3125550177 HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + SOURCE_KEY.encode(), hang_up=True
    )

    text = _log_once_it_says(log_path, "Invalid request: Invalid chunk size")
    assert "Invalid request: Invalid chunk size" in text  # the warning is kept, its quoted body is not
    assert r"\"GET\" 200" in text and "request_id=" in text  # the access log is on (its lines JSON)
    leaked = [value for value in [*PERSONAL, VERIFY_TOKEN, SOURCE_KEY] if value.lower() in text.lower()]
    assert leaked == []
    assert "ip=" not in text


def test_gunicorn_writes_its_own_lines_as_json_as_the_relay_does(logged_web_tier):
    url, log_path = logged_web_tier
    _send_raw(url, b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + BODY + b"\r\n")
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200

    lines = [line for line in _log_once_it_says(log_path, "Invalid request").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines if line.startswith("{")]

    assert [line for line in lines if not line.startswith("{")] == []
    loggers = {entry["logger"] for entry in entries}
    assert {"gunicorn.error", "gunicorn.access", "app.requests"} <= loggers
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["message"].startswith("Invalid request: Invalid chunk size") for entry in entries)


def test_the_request_id_gunicorn_gives_a_request_it_refuses_itself_is_in_its_log(logged_web_tier):
    url, log_path = logged_web_tier
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-Zebedee Quixotte: 1\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    [request_id] = [
        line.split(": ", 1)[1] for line in answer.decode("latin-1").split("\r\n") if line.startswith("X-Request-ID: ")
    ]

    text = _log_once_it_says(log_path, request_id)
    [entry] = [json.loads(line) for line in text.splitlines() if request_id in line]

    assert entry["request_id"] == request_id and entry["message"] == "answered 400 Bad Request"
