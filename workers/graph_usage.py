"""What Graph's usage headers say beside a rate-limit error: when access returns, and how much of a limit is used.

    X-Business-Use-Case-Usage: {"<business id>": [{"type": "pages", "call_count": 100, "total_cputime": 25,
                                "total_time": 25, "estimated_time_to_regain_access": 19}, ...], ...}
    X-App-Usage: {"call_count": 100, "total_cputime": 25, "total_time": 25}

`estimated_time_to_regain_access` is in minutes, one per business use case of each business id; the usages are
percentages of a limit. Both are read defensively: a header that is missing, not JSON, too long or shaped otherwise,
and any value that is not a finite number of at least 0, is left out, never an error, so a malformed header cannot
keep a lead from being retried. What is said of them names no business id (a client's account), only the use case's
type (when it is a plain word) and the numbers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BUSINESS_USE_CASE_HEADER = "X-Business-Use-Case-Usage"
APP_USAGE_HEADER = "X-App-Usage"
MAX_HEADER_CHARS = 16_384  # a header longer than this is not read
MAX_USE_CASES = 100  # business use cases read at most, across business ids
USAGE_NAMES = ("call_count", "total_cputime", "total_time")
REGAIN_FIELD = "estimated_time_to_regain_access"
_USE_CASE_TYPE = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class GraphUsage:
    """What Graph's usage headers say: the longest time until access returns (None when no estimate was given) and
    a description for logs and stats."""

    regain_after_seconds: float | None
    description: str


def read_usage(headers: Mapping[str, str]) -> GraphUsage | None:
    """The usage Graph's answer reports in its headers (`requests`' case-insensitive headers), None when it reports
    none that can be read."""
    parts: list[str] = []
    regain_minutes: float | None = None
    busiest = ""
    for use_case in _use_cases(_json_header(headers, BUSINESS_USE_CASE_HEADER)):
        minutes = _number(use_case.get(REGAIN_FIELD))
        if minutes is not None and (regain_minutes is None or minutes > regain_minutes):
            regain_minutes, busiest = minutes, _use_case_usage(use_case)
    if regain_minutes is not None:
        parts.append(f"Graph estimates access again in {regain_minutes:g} min" + (busiest and f" ({busiest})"))
    app_usage = _percentages(_json_header(headers, APP_USAGE_HEADER))
    if app_usage:
        parts.append(f"app usage {app_usage}")
    if not parts:
        return None
    regain_seconds = None if regain_minutes is None else regain_minutes * 60
    return GraphUsage(regain_seconds, "; ".join(parts))


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    value = headers.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_HEADER_CHARS:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser takes
        return None


def _use_cases(parsed: Any) -> list[dict[str, Any]]:
    """Every business use case of every business id, as objects (anything else skipped)."""
    if not isinstance(parsed, dict):
        return []
    found = [case for cases in parsed.values() if isinstance(cases, list) for case in cases if isinstance(case, dict)]
    return found[:MAX_USE_CASES]


def _use_case_usage(use_case: Mapping[str, Any]) -> str:
    kind = use_case.get("type")
    name = f"business use case {kind}" if isinstance(kind, str) and _USE_CASE_TYPE.fullmatch(kind) else ""
    usage = _percentages(use_case)
    return " ".join(part for part in (name, usage and f"at {usage}") if part)


def _percentages(usage: Any) -> str:
    """`call_count 100%, total_time 25%` of the usages that are numbers, in a fixed order; empty when none is."""
    if not isinstance(usage, dict):
        return ""
    read = ((name, _number(usage.get(name))) for name in USAGE_NAMES)
    return ", ".join(f"{name} {value:g}%" for name, value in read if value is not None)


def _number(value: Any) -> float | None:
    """A finite number of at least 0 (sent as a number, not a string or a boolean); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past what a float holds
        return None
    return number if math.isfinite(number) and number >= 0 else None
