"""The real Redis that integration and end-to-end tests use: found at REDIS_URL, flushed around each test.

A missing Redis fails the tests that need it (never skips them): CI must not go green without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_url_for_tests() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_TEST_REDIS_URL


def connect_or_fail(url: str) -> Redis:
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        raise RuntimeError(
            f"integration tests need a real Redis at {url} (set REDIS_URL, or run .ci/run which starts one)"
        ) from exc
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server_process(data_dir: Path, port: int | None = None, config: Path | None = None) -> Iterator[RedisServer]:
    """A private redis-server with AOF on (or with the options of `config`), for tests that restart Redis."""
    server = RedisServer(data_dir, port or free_port(), config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RedisServer:
    """A redis-server child process with `appendonly yes`, started and stopped on demand."""

    def __init__(self, data_dir: Path, port: int, config: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A configuration file comes first: redis-server reads the options given after it as more of its lines.
        args = [self.binary, *([str(self.config)] if self.config else [])]
        args += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        if self.config is None:
            args += ["--appendonly", "yes", "--save", ""]
        args += ["--daemonize", "no", "--logfile", "redis.log"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except RedisError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM: Redis flushes its AOF before exiting)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
