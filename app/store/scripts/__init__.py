"""Every Lua script the relay runs, each headed by its KEYS and ARGV, registered once per connection.

Scripts that touch many leads build lead keys from a prefix and suffix passed in ARGV (spelled in
`keys.py`), so they address keys not listed in KEYS: fine on one Redis or a Sentinel-managed
primary, which is what the relay supports, not on Redis Cluster.
Every status change goes through the `move_status` helper, which also keeps the per-status indexes and
enters a lead reaching a final status in the retention sets; the keys it touches are spelled in
`keys.py` and written into the helpers' source, so that upkeep needs no KEYS or ARGV of its own.
Numbers are returned as strings because Redis truncates Lua numbers to integers.
The scripts live in modules by area (`admission`, `delivery`, `limits`, `operations`), the Lua functions
they share in `transitions`; this package registers them all and re-exports each script's source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from app.store.scripts.admission import (
    ADMIT_LEAD,
    CLAIM_DUE_FETCHES,
    COMPLETE_FETCH,
    DEFER_FETCH,
    RELEASE_HELD_FETCHES,
    RENEW_FETCH_LEASE,
)
from app.store.scripts.delivery import CLAIM_BATCH, RECLAIM_STALE_BATCHES, RELEASE_RETRYING, SETTLE_LEADS
from app.store.scripts.limits import (
    BLOCK_UNTIL,
    FORGET_LAPSED_PAGES,
    HIT_WINDOWS,
    NOTE_PAUSE,
    PAUSE,
    RELEASE_SLOT,
    RESERVE_SLOT,
    TAKE_FETCH_PROBES,
    TAKE_PROBE,
)
from app.store.scripts.operations import ADOPT_RECORD, PURGE_RETAINED, RETRY_LEADS, TAKE_INTAKE_HANDOVER

__all__ = [
    "ADMIT_LEAD",
    "ADOPT_RECORD",
    "BLOCK_UNTIL",
    "CLAIM_BATCH",
    "CLAIM_DUE_FETCHES",
    "COMPLETE_FETCH",
    "DEFER_FETCH",
    "FORGET_LAPSED_PAGES",
    "HIT_WINDOWS",
    "NOTE_PAUSE",
    "PAUSE",
    "PURGE_RETAINED",
    "RECLAIM_STALE_BATCHES",
    "RELEASE_HELD_FETCHES",
    "RELEASE_RETRYING",
    "RELEASE_SLOT",
    "RENEW_FETCH_LEASE",
    "RESERVE_SLOT",
    "RETRY_LEADS",
    "TAKE_INTAKE_HANDOVER",
    "SETTLE_LEADS",
    "TAKE_FETCH_PROBES",
    "TAKE_PROBE",
    "ScriptCall",
    "Scripts",
    "run_pipelined",
]


@dataclass(frozen=True)
class Scripts:
    """The relay's Lua scripts registered on one Redis connection (EVALSHA, loaded on demand)."""

    admit_lead: Script
    claim_batch: Script
    settle_leads: Script
    reclaim_stale_batches: Script
    release_retrying: Script
    reserve_slot: Script
    release_slot: Script
    block_until: Script
    take_probe: Script
    pause: Script
    note_pause: Script
    complete_fetch: Script
    defer_fetch: Script
    claim_due_fetches: Script
    release_held_fetches: Script
    forget_lapsed_pages: Script
    take_fetch_probes: Script
    renew_fetch_lease: Script
    hit_windows: Script
    retry_leads: Script
    adopt_record: Script
    purge_retained: Script
    take_intake_handover: Script

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        """Register every script on `redis`."""
        sources: dict[str, str] = {
            "admit_lead": ADMIT_LEAD,
            "claim_batch": CLAIM_BATCH,
            "settle_leads": SETTLE_LEADS,
            "reclaim_stale_batches": RECLAIM_STALE_BATCHES,
            "release_retrying": RELEASE_RETRYING,
            "reserve_slot": RESERVE_SLOT,
            "release_slot": RELEASE_SLOT,
            "block_until": BLOCK_UNTIL,
            "take_probe": TAKE_PROBE,
            "pause": PAUSE,
            "note_pause": NOTE_PAUSE,
            "complete_fetch": COMPLETE_FETCH,
            "defer_fetch": DEFER_FETCH,
            "claim_due_fetches": CLAIM_DUE_FETCHES,
            "release_held_fetches": RELEASE_HELD_FETCHES,
            "forget_lapsed_pages": FORGET_LAPSED_PAGES,
            "take_fetch_probes": TAKE_FETCH_PROBES,
            "renew_fetch_lease": RENEW_FETCH_LEASE,
            "hit_windows": HIT_WINDOWS,
            "retry_leads": RETRY_LEADS,
            "adopt_record": ADOPT_RECORD,
            "purge_retained": PURGE_RETAINED,
            "take_intake_handover": TAKE_INTAKE_HANDOVER,
        }
        registered: dict[str, Any] = {f.name: redis.register_script(sources[f.name]) for f in fields(cls)}
        return cls(**registered)


@dataclass(frozen=True)
class ScriptCall:
    """One script invocation to send in a pipeline."""

    script: Script
    keys: Sequence[Any]
    args: Sequence[Any]


def run_pipelined(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run script calls in one round trip with EVALSHA, all or none; load the scripts and retry once on NOSCRIPT.

    redis-py's own pipelined scripts ask SCRIPT EXISTS before every execute: an extra round trip on
    the intake path. Scripts are loaded when first needed (a fresh or restarted Redis) instead.
    Several calls run in one MULTI/EXEC: a Redis that fills up (noeviction) or drops the connection
    midway refuses them all, never some, so a bulk answered with an error holds no lead that a client
    sending it again would make twice.
    """
    for attempt in (1, 2):
        try:
            if len(calls) == 1:  # one lead, most intake requests: no pipeline machinery
                [call] = calls
                return [redis.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)]
            pipe = redis.pipeline(transaction=True)
            for call in calls:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            return list(pipe.execute())
        except NoScriptError:
            if attempt == 2:
                raise
            for script in {call.script.sha: call.script for call in calls}.values():
                redis.script_load(script.script)
    raise AssertionError("unreachable")
