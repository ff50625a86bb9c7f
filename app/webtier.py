"""What the web tier needs checked before gunicorn starts it (`leadrelay web`, `leadrelay dev`, and
`leadrelay check-config`): the relay's settings and sources, and the variables deploy/gunicorn.conf.py reads."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from app.config import Bounds, ConfigError, Settings
from app.startup import WEB_REQUIREMENTS, Requirements, configuration_problems

# The web tier's counts that deploy/gunicorn.conf.py reads from the environment, with their defaults.
WEB_TIER_COUNTS = {
    "WEB_CONCURRENCY": 2,
    "GUNICORN_THREADS": 4,
    "GUNICORN_WORKER_CONNECTIONS": 1000,
    "GUNICORN_KEEPALIVE": 75,
}
_WEB_TIER_COUNT = Bounds(high=100_000, whole=True)  # what each of them may hold
_PORT = Bounds(high=65535, whole=True)

# The levels gunicorn's logger knows (deploy/gunicorn.conf.py: GUNICORN_LOG_LEVEL), in any case.
GUNICORN_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def web_tier_count(variable: str, environ: Mapping[str, str] | None = None) -> int:
    """One of `WEB_TIER_COUNTS` from the environment: a whole number of at least 1; raises `ConfigError`.

    Checked before gunicorn starts (`leadrelay web`, `dev`, `check-config`): gunicorn reads WEB_CONCURRENCY
    itself at import, and a bad value there is a traceback, or a server that takes connections and never
    answers (0 processes).
    """
    env = os.environ if environ is None else environ
    text = env.get(variable, "").strip() or str(WEB_TIER_COUNTS[variable])
    count = _whole_number(text, _WEB_TIER_COUNT)
    if count is None:
        raise ConfigError([f"{variable}: expected {_WEB_TIER_COUNT.describe()}, got {text[:20]!r}"])
    return count


def _whole_number(text: str, bounds: Bounds) -> int | None:
    """The whole number `text` spells within `bounds`, else None (also for more digits than `int` converts)."""
    try:
        return int(bounds.parse(text))
    except ValueError:
        return None


def drop_blank_web_tier_counts(environ: MutableMapping[str, str]) -> None:
    """Remove web-tier counts set to nothing, which count as unset: gunicorn itself reads WEB_CONCURRENCY
    at import and fails on an empty one."""
    for variable in WEB_TIER_COUNTS:
        if variable in environ and not environ[variable].strip():
            del environ[variable]


def web_tier_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """A `VARIABLE: ...` line for each of `WEB_TIER_COUNTS` that `web_tier_count` refuses, for a PORT that is
    no port, for a PROMETHEUS_MULTIPROC_DIR the web processes could not write their metrics into, for a
    FORWARDED_ALLOW_IPS gunicorn cannot read, and for a GUNICORN_LOG_LEVEL it does not know."""
    env = os.environ if environ is None else environ
    problems = []
    for variable in WEB_TIER_COUNTS:
        try:
            web_tier_count(variable, env)
        except ConfigError as exc:
            problems += exc.problems
    port = env.get("PORT", "").strip()
    if port and _whole_number(port, _PORT) is None:
        problems.append(f"PORT: expected a port number from 1 to 65535, got {port[:20]!r}")
    if problem := _metrics_folder_problem(env.get("PROMETHEUS_MULTIPROC_DIR", "").strip()):
        problems.append(f"PROMETHEUS_MULTIPROC_DIR: {problem}")
    if problem := _trusted_proxies_problem(env.get("FORWARDED_ALLOW_IPS", "")):
        problems.append(f"FORWARDED_ALLOW_IPS: {problem}")
    level = env.get("GUNICORN_LOG_LEVEL", "").strip()
    if level and level.lower() not in GUNICORN_LOG_LEVELS:  # gunicorn logs at info instead, without a word
        problems.append(f"GUNICORN_LOG_LEVEL: expected one of {', '.join(GUNICORN_LOG_LEVELS)}, got {level[:20]!r}")
    return problems


def _trusted_proxies_problem(value: str) -> str | None:
    """Why gunicorn would refuse `value` as the proxies it trusts: it then stops at start with a message that
    names no variable. Read as gunicorn reads it: the value stripped, split at commas (empty items skipped,
    the others stripped), each item `*` or an IP address or network without host bits."""
    for item in value.strip().split(","):
        address = item.strip()
        if not item or address == "*":
            continue
        try:
            ipaddress.ip_network(address)
        except ValueError:
            return f"expected comma-separated IP addresses or networks (10.0.0.0/8), or *, got {address[:100]!r}"
    return None


def _metrics_folder_problem(folder: str) -> str | None:
    """Why the web processes could not keep their metrics files in `folder` (made at start if missing)."""
    if not folder:
        return None  # unset: the web tier makes a folder of its own
    path = Path(folder)
    target = path if path.exists() else path.parent
    if not target.is_dir():
        return f"expected a folder, or a path whose parent folder exists, got {folder[:200]!r}"
    if not os.access(target, os.W_OK | os.X_OK):
        return f"expected a folder this user may write to, got {folder[:200]!r}"
    return None


def checked_web_settings(environ: MutableMapping[str, str], required: Requirements = WEB_REQUIREMENTS) -> Settings:
    """The settings gunicorn's processes will read from `environ`, checked first (`leadrelay dev`, which starts a
    worker beside them, checks what the worker requires too).

    Every bad variable, missing secret, web-tier count and sources file problem is named here at once (exit 2)
    instead of failing each process's boot with a traceback. Blank web-tier counts are removed from `environ`: they
    count as unset, and gunicorn reads WEB_CONCURRENCY itself, where an empty one fails.
    """
    settings, _, problems = configuration_problems(environ, required)
    drop_blank_web_tier_counts(environ)
    if problems := problems + web_tier_problems(environ):
        raise ConfigError(problems)
    return settings
