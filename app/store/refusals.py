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
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    if isinstance(exc, ResponseError):
        words = str(exc).split(maxsplit=1)
        return _REFUSAL_CODES.get(words[0] if words else "", "error")
    return "error"


# By the error's class, the more particular first: in redis-py a BusyLoadingError or an AuthenticationError is a
# ConnectionError, and a ReadOnlyError or an OutOfMemoryError a ResponseError.
_REASONS: tuple[tuple[type[RedisError], str], ...] = (
    (ReadOnlyError, "read-only"),
    (OutOfMemoryError, "out of memory"),
    (BusyLoadingError, "loading"),
    (AuthenticationError, "authentication refused"),
    (RedisTimeoutError, "timed out"),
    (RedisConnectionError, "unreachable"),
)


def describe(exc: RedisError) -> str:
    """The reason and the error's class, e.g. `read-only (ReadOnlyError)`, for a log line."""
    return f"{refusal_reason(exc)} ({type(exc).__name__})"
