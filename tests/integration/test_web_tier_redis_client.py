"""The web tier's Redis client against a Redis that takes connections and never answers."""

from __future__ import annotations

import socket
import time

from app import create_app
from tests.conftest import SOURCE_KEY
from tests.factories import make_submission


def test_intake_answers_503_within_seconds_when_redis_takes_connections_but_never_answers(settings):
    # A partitioned or failed-over Redis: each request would hold a thread for redis-py's 5 s, and /healthz,
    # waiting behind them for a thread, would fail until the pod is restarted.
    listener = socket.create_server(("127.0.0.1", 0))
    hung = create_app(settings.replace(redis_url=f"redis://127.0.0.1:{listener.getsockname()[1]}/0"))
    try:
        started = time.monotonic()
        response = hung.test_client().post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
        waited = time.monotonic() - started
    finally:
        listener.close()

    assert response.status_code == 503 and response.json["error"]["code"] == "UNAVAILABLE"
    assert waited < 3.5  # one wait of 2 s, not redis-py's 5 s
