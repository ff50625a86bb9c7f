"""Settings: the environment read once, validated, into a frozen dataclass.

Every field is named after its environment variable in snake case. A missing or malformed value
raises `ConfigError` naming the variable, so a process with a bad environment stops at start.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from redis.connection import ConnectionPool
from redis.exceptions import RedisError

from app.credentials import NamedSecretsError, parse_api_key, parse_ops_tokens, parse_source_keys
from app.crypto import RecordCipher
from app.models import IDEMPOTENCY_TTL_SECONDS

T = TypeVar("T")


class ConfigError(Exception):
    """One or more environment variables are missing or malformed; `problems` lists each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Typed configuration of the relay; build it with `Settings.from_env()`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    carecycle_api_key: str = ""
    carecycle_base_url: str = "https://api.carecycle.ai"
    carecycle_rate_limit_per_min: int = 60
    carecycle_connect_timeout_seconds: float = 5.0
    carecycle_read_timeout_seconds: float = 30.0
    leadrelay_sources: str = ""
    leadrelay_source_keys: Mapping[str, str] = field(default_factory=dict)
    leadrelay_ops_tokens: Mapping[str, str] = field(default_factory=dict)
    leadrelay_encryption_key: str = ""
    leadrelay_retry_base_seconds: float = 5.0
    leadrelay_retry_max_delay_seconds: float = 900.0
    leadrelay_max_age_hours: float = 72.0
    leadrelay_pause_probe_seconds: float = 30.0
    leadrelay_visibility_timeout_seconds: float = 60.0
    leadrelay_delivery_lanes: int = 2
    # The base of the links the relay hands out (a lead's statusUrl); empty: as each request reached the relay.
    leadrelay_public_url: str = ""
    leadrelay_record_retention_hours: float = 24.0
    leadrelay_retention_days: float = 30.0
    # Reverse proxies in front of the web tier whose X-Forwarded-For hop is trusted (0: use the socket peer).
    leadrelay_trusted_proxy_hops: int = 0
    facebook_app_secret: str = ""
    facebook_verify_token: str = ""
    facebook_access_token: str = ""
    facebook_graph_url: str = "https://graph.facebook.com"
    facebook_graph_version: str = "v25.0"
    facebook_backfill_minutes: int = 15
    facebook_connect_timeout_seconds: float = 5.0
    facebook_read_timeout_seconds: float = 20.0
    # The environment these settings were read from: sources name the variables holding their secrets.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from `environ` (default `os.environ`); `overrides` win over both."""
        settings, problems = cls.read_env(environ, **overrides)
        if problems:
            raise ConfigError(problems)
        return settings

    @classmethod
    def read_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> tuple[Settings, list[str]]:
        """Like `from_env`, but returns the problems beside settings holding defaults in place of malformed values."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in overrides or f.name == "environ":
                continue
            raw = env.get(f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = _parser(f)(raw.strip())
            except NamedSecretsError as exc:
                problems += [f"{f.name.upper()}: {problem}" for problem in exc.problems]
            except ValueError as exc:
                problems.append(f"{f.name.upper()}: {exc}")
        values.update(overrides)
        values.setdefault("environ", dict(env))
        settings = cls(**values)
        reported = {problem.split(":", 1)[0] for problem in problems}
        problems.extend(p for p in settings.problems() if p.split(":", 1)[0] not in reported)
        return settings, problems

    def problems(self) -> list[str]:
        """Every inconsistency between settings, as `VARIABLE: what is wrong` lines."""
        found = [
            f"{name.upper()}: must be {bounds.describe()}"
            for name, bounds in _BOUNDS.items()
            if not bounds.allows(getattr(self, name))
        ]
        for name in ("carecycle_base_url", "facebook_graph_url", "leadrelay_public_url", "redis_url"):
            if name == "leadrelay_public_url" and not self.leadrelay_public_url:
                continue  # unset: links are built from the request
            try:
                _url(getattr(self, name), schemes=_URL_SCHEMES[name])
            except ValueError as exc:
                found.append(f"{name.upper()}: {exc}")
        version = self.facebook_graph_version
        if not _GRAPH_VERSION.fullmatch(version.strip("/")):  # Graph reads no other spelling as a version
            found.append(f"FACEBOOK_GRAPH_VERSION: expected a Graph API version such as v25.0, got {version[:40]!r}")
        if not any(p.startswith("REDIS_URL:") for p in found):
            found += [f"REDIS_URL: {problem}" for problem in _redis_url_problems(self.redis_url)]
        if self.leadrelay_encryption_key:
            try:
                RecordCipher(self.leadrelay_encryption_key)
            except ValueError as exc:
                found.append(f"LEADRELAY_ENCRYPTION_KEY: {exc}")
        found += self._retention_problems()
        needed = self.upload_timeout_total_seconds() + 5
        if self.leadrelay_visibility_timeout_seconds < needed:
            found.append(
                f"LEADRELAY_VISIBILITY_TIMEOUT_SECONDS: must exceed the careCycle connect + read timeouts "
                f"by 5 s (at least {needed:g})"
            )
        return found

    def _retention_problems(self) -> list[str]:
        days = self.leadrelay_retention_days
        if self.leadrelay_record_retention_hours > days * 24:
            return [
                f"LEADRELAY_RECORD_RETENTION_HOURS: must not exceed LEADRELAY_RETENTION_DAYS={days:g}: expected at "
                f"most {days * 24:g} (hours)"
            ]
        return []

    def require(self, *names: str) -> None:
        """Raise `ConfigError` unless every named setting is non-empty (for commands that need them)."""
        missing = self.missing(*names)
        if missing:
            raise ConfigError(missing)

    def missing(self, *names: str) -> list[str]:
        """A `VARIABLE: required` line for each named setting left empty."""
        return [f"{n.upper()}: required" for n in names if not getattr(self, n)]

    def record_retention_seconds(self) -> int:
        """How long a settled lead's encrypted record is kept (those an operator may retry: see README)."""
        return max(1, round(self.leadrelay_record_retention_hours * 3600))

    def retention_seconds(self) -> int:
        """How long a lead's metadata is kept after it reached a final status."""
        return max(1, round(self.leadrelay_retention_days * 86400))

    def idempotency_ttl_seconds(self) -> int:
        """How long an `Idempotency-Key` (or a Google lead id) names its lead: a week, or the retention if
        shorter, so that a key never outlives its lead and a repeat after the purge makes a new lead."""
        return min(IDEMPOTENCY_TTL_SECONDS, self.retention_seconds())

    def upload_timeout_total_seconds(self) -> float:
        """Longest a single upload request can take before it times out."""
        return self.carecycle_connect_timeout_seconds + self.carecycle_read_timeout_seconds

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like `from_env`)."""
        settings = dataclasses.replace(self, **changes)
        problems = settings.problems()
        if problems:
            raise ConfigError(problems)
        return settings


def _url(value: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(value)
    if parsed.scheme == "unix" and "unix" in schemes:
        # redis-py reads only the path of a unix URL: `unix://tmp/redis.sock` would mean /redis.sock.
        if parsed.hostname is not None or not parsed.path.strip("/"):
            raise ValueError(f"expected unix:///path/to/the.sock (a socket path, no host), got {shown_url(value)!r}")
    elif parsed.scheme not in schemes or not parsed.hostname:
        raise ValueError(f"expected a {'/'.join(schemes)} URL, got {shown_url(value)!r}")
    elif parsed.scheme in ("http", "https") and ("?" in value or "#" in value):
        # A base URL is followed by the relay's own paths: a query or fragment before them would swallow them.
        raise ValueError(f"expected a base URL without a ?query or #fragment, got {shown_url(value)!r}")
    else:
        try:
            port = parsed.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(f"expected a port from 1 to 65535, got {shown_url(value)!r}")
    return value


def _redis_url_problems(value: str) -> list[str]:
    """What redis-py would refuse in a Redis URL only when it first connects: the database and the options."""
    parsed = urlparse(value)
    database = parsed.path.strip("/") if parsed.scheme != "unix" else ""
    if database and not (database.isascii() and database.isdigit()):  # int() and redis-py take "١" and "１" too
        # Not echoed: with a "/" in an unescaped password, what follows the host may be part of it.
        return ["expected a database number after the host (redis://host:6379/0)"]
    try:
        ConnectionPool.from_url(value).make_connection()  # reads the URL's ?options, connects to nothing
    except (TypeError, ValueError, RedisError):
        return ["expected only redis-py's connection options after '?' (db, socket_timeout, ...), with valid values"]
    return []


def shown_url(url: str) -> str:
    """The URL as a message may show it: whatever comes before an "@" (a user and a password) is masked,
    even in a URL too malformed to parse, and its options (`?password=` among them) and fragment are left out.

    An "@" past a "?" or "#" is a password holding that mark unescaped, or a query holding an e-mail address:
    either way only the host that follows it is shown, never the text around it."""
    scheme_match = _URL_SCHEME.match(url)
    scheme = scheme_match.group(0) if scheme_match else ""
    cut = min((index for index in (url.find("?"), url.find("#")) if index >= 0), default=len(url))
    address, rest = url[:cut], url[cut:]
    if "@" in rest:
        host = _HOST_AND_PORT.match(rest.rpartition("@")[2])
        return f"{scheme}***@{host.group(0) if host else ''}..."
    shown = address + (f"{rest[0]}..." if rest else "")
    if "@" not in address:
        return shown
    return f"{scheme}***@{shown.rpartition('@')[2]}"


_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/*")
_HOST_AND_PORT = re.compile(r"[A-Za-z0-9.:\[\]-]*")


# As Meta spells them (v2.12, v25.0); the Graph client strips surrounding slashes.
_GRAPH_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")

_URL_SCHEMES = {
    "carecycle_base_url": ("http", "https"),
    "facebook_graph_url": ("http", "https"),
    "leadrelay_public_url": ("http", "https"),
    "redis_url": ("redis", "rediss", "unix"),
}

# Plain decimal spellings only: Python's int() and float() would also take `1_0`, `1e3`, `inf`, `nan`
# and non-ASCII digits.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


@dataclass(frozen=True)
class Bounds:
    """What a numeric setting may hold: a whole number from `low`, or a number above 0; at most `high`."""

    high: int
    whole: bool = False
    low: int = 1

    def allows(self, value: float) -> bool:
        """True within the bounds; NaN never is, and infinity is above any `high`."""
        above_low = value >= self.low if self.whole else value > 0
        return above_low and value <= self.high

    def describe(self) -> str:
        """The bounds in words, as messages show them."""
        if self.whole:
            return f"a whole number from {self.low} to {self.high}"
        return f"a decimal number above 0 and at most {self.high}"

    def parse(self, raw: str) -> float:
        """The value `raw` spells; raises `ValueError` for anything but a plain number within the bounds."""
        value: float | None = None
        if (_WHOLE_NUMBER if self.whole else _DECIMAL_NUMBER).fullmatch(raw):
            try:
                value = int(raw) if self.whole else float(raw)
            except ValueError:  # more digits than int() converts; refused below
                value = None
        if value is None or not self.allows(value):
            raise ValueError(f"expected {self.describe()}, got {raw!r}")
        return value


_REQUEST_TIMEOUT = Bounds(high=600)
# A Meta fetch job has 120 s, its RQ timeout and its lead's lease (app.queues, app.store.fetches): a Graph call
# (connect + read) must time out well within them, or a Graph API that hangs has every job killed mid-call, with
# nothing to record the failure or pause retrieval, and each lead taken up again as its lease runs out.
_GRAPH_TIMEOUT = Bounds(high=55)

# Upper bounds catch a slip of the keyboard (and keep every derived Redis expiry far inside its range);
# each is well above what the relay needs.
_BOUNDS: dict[str, Bounds] = {
    # careCycle's standard is 60; `leadrelay bench` measures capacity with 1,000,000 standing for "no limit".
    "carecycle_rate_limit_per_min": Bounds(high=1_000_000, whole=True),
    "carecycle_connect_timeout_seconds": _REQUEST_TIMEOUT,
    "carecycle_read_timeout_seconds": _REQUEST_TIMEOUT,
    "leadrelay_retry_base_seconds": Bounds(high=3600),
    "leadrelay_retry_max_delay_seconds": Bounds(high=86400),
    "leadrelay_max_age_hours": Bounds(high=8760),  # a year
    "leadrelay_pause_probe_seconds": Bounds(high=3600),
    # At most an hour: a killed worker's batch waits this long; it still exceeds the longest upload (2 × 600 + 5).
    "leadrelay_visibility_timeout_seconds": Bounds(high=3600),
    "leadrelay_delivery_lanes": Bounds(high=100, whole=True),
    "leadrelay_record_retention_hours": Bounds(high=87600),  # ten years
    "leadrelay_retention_days": Bounds(high=3650),  # ten years
    "leadrelay_trusted_proxy_hops": Bounds(high=10, whole=True, low=0),
    "facebook_backfill_minutes": Bounds(high=1440, whole=True),  # a day
    "facebook_connect_timeout_seconds": _GRAPH_TIMEOUT,
    "facebook_read_timeout_seconds": _GRAPH_TIMEOUT,
}


def _parser(setting: dataclasses.Field[Any]) -> Callable[[str], Any]:
    if str(setting.type) in ("int", "float"):
        return _BOUNDS[setting.name].parse  # every numeric setting has bounds: a KeyError here names a missing one
    return _PARSERS.get(setting.name, str)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "leadrelay_source_keys": parse_source_keys,
    "leadrelay_ops_tokens": parse_ops_tokens,
    "carecycle_api_key": parse_api_key,
}
