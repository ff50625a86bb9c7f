"""The audit trail of operator actions: a capped Redis list, newest first."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from app.store import keys

MAX_AUDIT_ENTRIES = 10_000


@dataclass(frozen=True)
class AuditEntry:
    """One operator action: when, what, who (a token's name or `cli:<user>`, never a secret), on what, how many."""

    at: float
    action: str
    actor: str
    count: int
    lead_id: str | None = None
    filter: Mapping[str, Any] = field(default_factory=dict)


class AuditLog:
    """Appends to and reads the audit trail; the oldest entries fall off past `MAX_AUDIT_ENTRIES`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def append(self, entry: AuditEntry) -> None:
        """Record one action."""
        item = {
            "at": entry.at,
            "action": entry.action,
            "actor": entry.actor,
            "count": entry.count,
            "leadId": entry.lead_id,
            "filter": dict(entry.filter),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(keys.audit_key(), json.dumps(item))
        pipe.ltrim(keys.audit_key(), 0, MAX_AUDIT_ENTRIES - 1)
        pipe.execute()

    def recent(self, limit: int, offset: int = 0) -> list[AuditEntry]:
        """`limit` entries, newest first, after the newest `offset`."""
        entries = []
        for raw in self._redis.lrange(keys.audit_key(), offset, offset + max(0, limit - 1)):
            item = json.loads(raw)
            entries.append(
                AuditEntry(
                    at=float(item["at"]),
                    action=item["action"],
                    actor=item["actor"],
                    count=int(item["count"]),
                    lead_id=item.get("leadId"),
                    filter=item.get("filter") or {},
                )
            )
        return entries
