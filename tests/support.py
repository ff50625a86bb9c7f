"""Test doubles and helpers shared by the suites: a clock you move, waiting on a condition, whether a process runs, a
`leadrelay worker` process, a chunked post."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

REPO_ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock that only moves when told to (sleeping moves it too)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.current = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += max(0.0, seconds)


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> object:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def is_running(pid: int) -> bool:
    """True while process `pid` exists and is no zombie (one that ended may wait a while for its parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # its state, after the command in parentheses


def start_worker_process(name: str, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `leadrelay worker --name NAME` with `env`, its output appended to `log_path`, leading a process group of
    its own: the worker and the scheduler process it forks are signalled (and reaped) together."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--name", name],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )


def post_chunked(
    client: FlaskClient, url: str, body: bytes, headers: dict[str, str] | None = None, **kwargs: Any
) -> TestResponse:
    """POST `body` as gunicorn hands over a chunked request: no Content-Length, the stream ended by the server."""
    return client.post(
        url,
        input_stream=io.BytesIO(body),
        headers={**(headers or {}), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
        **kwargs,
    )


def fail_second_requeue(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make a bulk retry's second `RetryStore.requeue` call raise `error`: its first page is re-queued by then."""
    from app.store.retries import RetryStore

    requeue, calls = RetryStore.requeue, []

    def fails_second_time(self: RetryStore, lead_ids: Any, now: float, detail: str) -> Any:
        calls.append(len(lead_ids))
        if len(calls) == 2:
            raise error
        return requeue(self, lead_ids, now, detail)

    monkeypatch.setattr(RetryStore, "requeue", fails_second_time)
