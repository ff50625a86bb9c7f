"""The real Redis that integration and end-to-end tests use: found at REDIS_URL, flushed around each test.

A missing Redis fails the tests that need it (never skips them): CI must not go green without it. A database is
flushed only when it is the tests' own: empty, or holding the mark they set after each flush (a run that crashed
left its keys beside it). One holding keys without the mark (a `leadrelay dev` Redis exported for `leadrelay
stats`) stops the run before anything in it is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from redis import Redis
from redis.connection import parse_url
from redis.exceptions import RedisError

from app.ports import free_port

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"

# Outside the relay's "leadrelay:" prefix, so that no relay code reads or counts it.
TEST_DATABASE_MARK = "leadrelay-tests:owned"
TEST_DATABASE_MARK_TEXT = "the leadrelay test suite empties this database before and after each test"


class ForeignDatabaseError(RuntimeError):
    """The database at REDIS_URL holds keys the tests did not write: they refuse to flush it."""


def redis_url_for_tests() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_TEST_REDIS_URL


def beside_database_url(url: str) -> str:
    """The database beside `url`'s on the same server, its number with the last bit flipped (15 and 14, 0 and 1):
    where `scripts/test` runs one share of the end-to-end tests while the others use `url`'s. The number is read as
    redis-py reads it (a `db` option before the path's; a socket's path is no number) and written where it reads it."""
    parts = urlsplit(url)
    beside = parse_url(url).get("db", 0) ^ 1
    options = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != "db"]
    if parts.scheme == "unix":  # built by hand: urlunsplit drops the "//" before an empty host
        return f"unix://{parts.netloc}{parts.path}?{urlencode([*options, ('db', beside)])}"
    return urlunsplit(parts._replace(path=f"/{beside}", query=urlencode(options)))


def connect_or_fail(url: str) -> Redis:
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        raise RuntimeError(
            f"integration tests need a real Redis at {shown_url(url)} (set REDIS_URL, or run .ci/run which starts one)"
        ) from exc
    return client


def stop_unless_the_tests_own_their_database() -> None:
    """Once, before the first test on the database at REDIS_URL: the whole run stops there, flushing nothing, when
    it holds keys the tests did not write."""
    url = redis_url_for_tests()
    client = connect_or_fail(url)
    try:
        refuse_unless_owned(client, url)
    except ForeignDatabaseError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    finally:
        client.close()


@contextmanager
def owned_test_database() -> Iterator[Redis]:
    """The database at REDIS_URL, emptied before and after the test; `ForeignDatabaseError`, before anything is
    flushed, when it holds keys the tests did not write."""
    url = redis_url_for_tests()
    client = connect_or_fail(url)
    try:
        empty_test_database(client, url)
    except ForeignDatabaseError:
        client.close()
        raise
    try:
        yield client
    finally:
        flush_and_mark(client)  # whatever the test did: the database was the tests' own when it began
        client.close()


def empty_test_database(client: Redis, url: str) -> None:
    """Flush the database and mark it the tests' own; raises `ForeignDatabaseError`, flushing nothing, when it holds
    keys but not the mark."""
    refuse_unless_owned(client, url)
    flush_and_mark(client)


def refuse_unless_owned(client: Redis, url: str) -> None:
    """Raise `ForeignDatabaseError` when the database holds keys but not the tests' mark."""
    held = client.dbsize()
    if held and not client.exists(TEST_DATABASE_MARK):
        shown, keys_held = shown_url(url), f"{held} key{'s' if held != 1 else ''}"
        raise ForeignDatabaseError(
            f"REDIS_URL={shown} holds {keys_held} the tests did not write (no {TEST_DATABASE_MARK} key), and the "
            "integration and end-to-end tests empty the database they use: they refuse this one. "
            f"Point REDIS_URL at an empty database (the default is {DEFAULT_TEST_REDIS_URL}), or, if nothing in "
            f"it is needed, empty it yourself (redis-cli -u '{shown}' FLUSHDB) and run the tests again"
        )


def flush_and_mark(client: Redis) -> None:
    client.flushdb()
    client.set(TEST_DATABASE_MARK, TEST_DATABASE_MARK_TEXT)


def shown_url(url: str) -> str:
    """`url` without its password (a Redis URL may carry one before its host, or as its `?password=` option): its
    options and fragment are left out."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc, query="..." if parts.query else "", fragment="").geturl()


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


if __name__ == "__main__":  # scripts/test: the URL of the database beside REDIS_URL's (default: the tests')
    import sys

    sys.stdout.write(beside_database_url(sys.argv[1] if len(sys.argv) > 1 else redis_url_for_tests()) + "\n")
