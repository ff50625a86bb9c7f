"""Settings: the environment read once, validated, into a frozen dataclass.

Every field is named after its environment variable in snake case. A missing or malformed value
raises `ConfigError` naming the variable, so a process with a bad environment stops at start.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from app.crypto import RecordCipher

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
    leadrelay_public_url: str = "http://127.0.0.1:8000"
    leadrelay_record_retention_hours: float = 24.0
    leadrelay_retention_days: float = 30.0
    # Reverse proxies in front of the web tier whose X-Forwarded-For hop is trusted (0: use the socket peer).
    leadrelay_trusted_proxy_hops: int = 0
    facebook_app_secret: str = ""
    facebook_verify_token: str = ""
    facebook_access_token: str = ""
    facebook_graph_url: str = "https://graph.facebook.com"
    facebook_graph_version: str = "v21.0"
    facebook_backfill_minutes: int = 15
    facebook_connect_timeout_seconds: float = 5.0
    facebook_read_timeout_seconds: float = 20.0
    # The environment these settings were read from: sources name the variables holding their secrets.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from `environ` (default `os.environ`); `overrides` win over both."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in overrides or f.name == "environ":
                continue
            raw = env.get(f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            parse = _PARSERS.get(f.name, _parser_for_type(f.type))
            try:
                values[f.name] = parse(raw.strip())
            except ValueError as exc:
                problems.append(f"{f.name.upper()}: {exc}")
        values.update(overrides)
        values.setdefault("environ", dict(env))
        settings = cls(**values)
        reported = {problem.split(":", 1)[0] for problem in problems}
        problems.extend(p for p in settings.problems() if p.split(":", 1)[0] not in reported)
        if problems:
            raise ConfigError(problems)
        return settings

    def problems(self) -> list[str]:
        """Every inconsistency between settings, as `VARIABLE: what is wrong` lines."""
        found: list[str] = []
        if self.carecycle_rate_limit_per_min < 1:
            found.append("CARECYCLE_RATE_LIMIT_PER_MIN: must be at least 1")
        if self.leadrelay_delivery_lanes < 1:
            found.append("LEADRELAY_DELIVERY_LANES: must be at least 1")
        for name in ("carecycle_base_url", "facebook_graph_url", "leadrelay_public_url", "redis_url"):
            try:
                _url(getattr(self, name), schemes=_URL_SCHEMES[name])
            except ValueError as exc:
                found.append(f"{name.upper()}: {exc}")
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
        found = [
            f"{name.upper()}: must be positive"
            for name in ("leadrelay_record_retention_hours", "leadrelay_retention_days")
            if not getattr(self, name) > 0
        ]
        if self.leadrelay_record_retention_hours > self.leadrelay_retention_days * 24:
            found.append("LEADRELAY_RECORD_RETENTION_HOURS: must not exceed LEADRELAY_RETENTION_DAYS (in hours)")
        return found

    def require(self, *names: str) -> None:
        """Raise `ConfigError` unless every named setting is non-empty (for commands that need them)."""
        missing = [f"{n.upper()}: required" for n in names if not getattr(self, n)]
        if missing:
            raise ConfigError(missing)

    def record_retention_seconds(self) -> int:
        """How long a settled lead's encrypted record is kept (records of `rejected`/`dead` leads: see README)."""
        return max(1, round(self.leadrelay_record_retention_hours * 3600))

    def retention_seconds(self) -> int:
        """How long a lead's metadata is kept after it reached a final status."""
        return max(1, round(self.leadrelay_retention_days * 86400))

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
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ValueError(f"expected a {'/'.join(schemes)} URL, got {value!r}")
    return value


_URL_SCHEMES = {
    "carecycle_base_url": ("http", "https"),
    "facebook_graph_url": ("http", "https"),
    "leadrelay_public_url": ("http", "https"),
    "redis_url": ("redis", "rediss", "unix"),
}


def _number_parser(
    kind: Callable[[str], Any], is_allowed: Callable[[Any], bool], what: str, bound: str
) -> Callable[[str], Any]:
    """A parser of `kind` (int or float) refusing values `is_allowed` rejects, naming what was expected."""

    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"expected {what}, got {raw!r}") from None
        if not is_allowed(value):
            raise ValueError(f"expected {bound}, got {raw!r}")
        return value

    return parse


_positive_int = _number_parser(int, lambda v: v >= 1, "a whole number", "a positive whole number")
_non_negative_int = _number_parser(int, lambda v: v >= 0, "a whole number", "a whole number of at least 0")
_positive_float = _number_parser(float, lambda v: v > 0, "a number", "a positive number")  # NaN fails too


def parse_named_secrets(raw: str) -> dict[str, str]:
    """`name=secret,name2=secret2` -> {secret: name}; the name is what logs and audits may show."""
    secrets: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, secret = item.partition("=")
        if not sep or not name.strip() or not secret.strip():
            raise ValueError("expected comma-separated name=secret pairs")
        secrets[secret.strip()] = name.strip()
    return secrets


def _parser_for_type(type_name: Any) -> Callable[[str], Any]:
    return {"int": _positive_int, "float": _positive_float}.get(str(type_name), str)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "leadrelay_source_keys": parse_named_secrets,
    "leadrelay_ops_tokens": parse_named_secrets,
    "leadrelay_trusted_proxy_hops": _non_negative_int,
}
