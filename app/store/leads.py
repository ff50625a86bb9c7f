"""Lead records in Redis: admission, reads, status counts and the newest-first index."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis

from app.models import Lead, LeadEvent, LeadStatus, NewLead
from app.store import keys
from app.store.codec import text
from app.store.fetches import fetch_lease_deadline
from app.store.scripts import ScriptCall, Scripts, run_pipelined
from app.store.throttle import WINDOW_SECONDS, WindowGate

# What the admission script answers for a lead refused by a rate limit.
THROTTLED = "throttled"


@dataclass(frozen=True)
class Admitted:
    """The lead that stands for a submission, and its status; on a repeat, the digest of the submission that
    lead was taken with ("" when it was stored without one). `purged`: a repeat of a lead the relay no longer
    holds (deleted when its retention ran out), which only a key outliving its lead names (a Meta leadgen id);
    `status` is then the one the submission would have been taken in with, not the lead's."""

    id: str
    status: LeadStatus
    repeated: bool
    request_digest: str = ""
    purged: bool = False


class LeadNotFoundError(LookupError):
    """No lead with that id is stored (never was, or expired after retention)."""


class LeadStore:
    """Reads and writes lead hashes; every write that changes a status goes through a Lua script."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def admit(
        self, leads: Sequence[NewLead], sealed_records: Sequence[str], now: float, gate: WindowGate | None = None
    ) -> list[Admitted]:
        """Store new leads in one round trip; returns, per lead, the lead that stands for it.

        A lead whose idempotency key was seen before is not stored; the earlier lead is returned.
        An empty sealed record stores a lead without one (`fetching`, until its record is retrieved).
        With a `gate` (one lead only: a form post), the lead counts as one request against its limits in
        the same round trip, and `RateLimitedError` is raised, with nothing stored, when one is used up.
        """
        if gate is not None and len(leads) != 1:
            raise ValueError("a rate-limit gate admits one lead at a time")
        calls = [
            _admission_call(self._scripts, lead, sealed, now, gate)
            for lead, sealed in zip(leads, sealed_records, strict=True)
        ]
        admitted = []
        for lead, reply in zip(leads, run_pipelined(self._redis, calls), strict=True):
            # A key outliving its lead (a Meta leadgen id is remembered longer than leads are kept) still marks
            # a repeat: the submission was taken in once, and is not taken in again.
            stored_id, stored_status = text(reply[0]) or "", text(reply[1]) or ""
            if stored_status == THROTTLED and gate is not None:
                raise gate.refusal(int(reply[2]), now)
            repeated = stored_id != lead.id
            digest = (text(reply[2]) or "") if repeated and len(reply) > 2 else ""
            status = LeadStatus(stored_status or lead.status.value)
            admitted.append(Admitted(stored_id, status, repeated, digest, purged=repeated and not stored_status))
        return admitted

    def get(self, lead_id: str) -> Lead:
        """The lead with its last events; raises `LeadNotFoundError`."""
        if not keys.is_lead_id(lead_id):
            raise LeadNotFoundError(lead_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(keys.lead_key(lead_id), _SHOWN_FIELDS)
        pipe.lrange(keys.lead_events_key(lead_id), 0, -1)
        values, events = pipe.execute()
        raw = _shown_fields(values)
        if raw is None:
            raise LeadNotFoundError(lead_id)
        return _lead_from_hash(raw, events)

    def get_many(self, lead_ids: Iterable[str]) -> list[Lead]:
        """The stored leads among `lead_ids`, in order, without events; missing ones are skipped."""
        ids = list(lead_ids)
        pipe = self._redis.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hmget(keys.lead_key(lead_id), _SHOWN_FIELDS)
        found = (_shown_fields(values) for values in pipe.execute())
        return [_lead_from_hash(raw, []) for raw in found if raw is not None]

    def status_counts(self) -> dict[LeadStatus, int]:
        """Number of leads in each status (kept by the transition scripts, no scan)."""
        return counts_from_hash(self._redis.hgetall(keys.status_counts_key()))

    def source_status_counts(self, source: str) -> dict[LeadStatus, int]:
        """Number of one source's leads in each status, of those counted by source (see `SOURCE_COUNTED_FIELD`)."""
        return counts_from_hash(self._redis.hgetall(keys.source_status_counts_key(source)))

    def start_counting_by_source(self, now: float) -> None:
        """Note, once, from when each lead taken in is counted by its source: from now when leads are held already
        (taken in by an earlier release: left out of their sources' counts), from the first lead when none is."""
        held = self._redis.zcard(keys.leads_index_key())
        self._redis.set(keys.source_counts_since_key(), repr(now) if held else "0", nx=True)

    def has_had_source(self, source: str) -> bool:
        """True when a lead of `source` was ever taken in (its slug is remembered beyond the lead)."""
        return bool(self._redis.sismember(keys.sources_seen_key(), source))


def _admission_call(scripts: Scripts, lead: NewLead, sealed: str, now: float, gate: WindowGate | None) -> ScriptCall:
    """The admission script's call for one lead (see ADMIT_LEAD for its KEYS and ARGV)."""
    lua_keys = [
        keys.lead_key(lead.id),
        keys.lead_events_key(lead.id),
        keys.status_counts_key(),
        keys.ready_key(),
        keys.leads_index_key(),
        keys.idempotency_key(lead.idempotency_scope or lead.source, lead.idempotency_key or ""),
        keys.person_key(lead.person or ""),
        keys.fetching_key(),
        keys.failed_bucket_key(int(now // 60)),
        keys.failed_second_key(int(now)),
        *(gate.counters if gate else ()),
    ]
    limits: list[Any] = [WINDOW_SECONDS, *gate.limits] if gate else [0]
    args: list[Any] = [
        lead.id,
        repr(now),
        lead.status.value,
        lead.detail,
        lead.idempotency_ttl_seconds if lead.idempotency_key else 0,
        lead.person_memory_seconds if lead.person else 0,
        lead.duplicate_window_seconds,
        keys.LEAD_KEY_PREFIX,
        repr(fetch_lease_deadline(now)),
        lead.source,
        "1" if lead.idempotency_outlives_lead else "0",
        *limits,
        # The script sets id, source, status, received_at and updated_at itself.
        "attempts",
        0,
        "external_id",
        lead.external_id,
        "phone",
        lead.phone_masked,
        "warnings",
        json.dumps(list(lead.kept_warnings)),
    ]
    for name, value in lead.extra_fields.items():
        args.extend((name, value))
    if lead.request_digest:
        args.extend((keys.REQUEST_DIGEST_FIELD, lead.request_digest))
    if sealed:  # a lead without a record (`fetching`) has no `record` field: delivery never claims it
        args.extend((keys.SUBMISSION_FIELD if lead.unnormalized else keys.RECORD_FIELD, sealed))
    return ScriptCall(scripts.admit_lead, lua_keys, args)


def counts_from_hash(raw: Mapping[Any, Any]) -> dict[LeadStatus, int]:
    """The status counts hash as a count for every status (0 for those never seen)."""
    counts = {status: 0 for status in LeadStatus}
    for name, value in raw.items():
        status = LeadStatus(text(name) or "")
        counts[status] = int(value)
    return counts


# The lead hash fields a `Lead` is read from: never the sealed record or submission, most of a lead's bytes, which
# the status API and the lead list have no use for (the dashboard lists failed leads, which keep theirs, every few
# seconds).
_SHOWN_FIELDS = (
    "id",
    "source",
    "status",
    "received_at",
    "updated_at",
    "attempts",
    "external_id",
    "phone",
    "next_attempt_at",
    "batch_id",
    "delivered_at",
    "error",
    "warnings",
)


def _shown_fields(values: Sequence[bytes | None]) -> dict[bytes, bytes] | None:
    """The fields HMGET read as a hash would give them; None when there is no such lead (a lead has a status)."""
    raw = {name.encode(): value for name, value in zip(_SHOWN_FIELDS, values, strict=True) if value is not None}
    return raw if b"status" in raw else None


def _float(value: bytes | None) -> float | None:
    return float(value) if value not in (None, b"") else None


def _lead_from_hash(raw: dict[bytes, bytes], events: list[bytes]) -> Lead:
    def field(name: str) -> str | None:
        return text(raw.get(name.encode()))

    parsed_events = []
    for item in events:
        event = json.loads(item)
        parsed_events.append(
            LeadEvent(at=float(event["at"]), status=LeadStatus(event["status"]), detail=event["detail"])
        )
    return Lead(
        id=field("id") or "",
        source=field("source") or "",
        status=LeadStatus(field("status") or ""),
        received_at=float(field("received_at") or 0),
        updated_at=float(field("updated_at") or 0),
        attempts=int(field("attempts") or 0),
        external_id=field("external_id") or "",
        phone_masked=field("phone") or "",
        next_attempt_at=_float(raw.get(b"next_attempt_at")),
        batch_id=field("batch_id"),
        delivered_at=_float(raw.get(b"delivered_at")),
        error=field("error"),
        warnings=tuple(json.loads(field("warnings") or "[]")),
        events=tuple(parsed_events),
    )
