"""Decoding of Redis replies: the store's connection returns bytes (RQ needs it so)."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str | None:
    """A reply value as text, None for a missing one."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
