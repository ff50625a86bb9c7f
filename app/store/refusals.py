"""What a Redis error says about Redis, in a word or two, for probes and log lines.

The words come from the error's class and Redis's error code only, never from its message: a message may
quote a command, and a connection error may name the URL with its password.
"""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Refusals that redis-py raises as a plain ResponseError, by the code that starts Redis's answer.
_REFUSAL_CODES = {
    "MISCONF": "writes stopped",  # a failed snapshot or AOF write under stop-writes-on-bgsave-error
    "NOREPLICAS": "too few replicas",  # min-replicas-to-write not met
}


def is_reachable(exc: RedisError) -> bool:
    """Whether Redis answered (and refused) rather than not answering at all."""
    return isinstance(exc, ResponseError)


def refusal_reason(exc: RedisError) -> str:
    """A short reason: read-only, out of memory, writes stopped, unreachable, timed out, ..."""
    if isinstance(exc, ReadOnlyError):
        return "read-only"
    if isinstance(exc, OutOfMemoryError):
        return "out of memory"
    if isinstance(exc, BusyLoadingError):
        return "loading"
    if isinstance(exc, AuthenticationError):
        return "authentication refused"
    if isinstance(exc, RedisTimeoutError):
        return "timed out"
    if isinstance(exc, RedisConnectionError):
        return "unreachable"
    if isinstance(exc, ResponseError):
        words = str(exc).split(maxsplit=1)
        return _REFUSAL_CODES.get(words[0] if words else "", "error")
    return "error"


def describe(exc: RedisError) -> str:
    """The reason and the error's class, e.g. `read-only (ReadOnlyError)`, for a log line."""
    return f"{refusal_reason(exc)} ({type(exc).__name__})"
