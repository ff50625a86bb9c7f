"""Every Lua script the relay runs, each headed by its KEYS and ARGV, registered once per connection.

Scripts that touch many leads build lead keys from a prefix and suffix passed in ARGV (spelled in
`keys.py`), so they address keys not listed in KEYS: fine on one Redis or a Sentinel-managed
primary, which is what the relay supports, not on Redis Cluster.
Every status change goes through the `move_status` helper, which also keeps the per-status indexes and
enters a lead reaching a final status in the retention sets; the keys it touches are spelled in
`keys.py` and written into the helpers' source, so that upkeep needs no KEYS or ARGV of its own.
Numbers are returned as strings because Redis truncates Lua numbers to integers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from app.models import FINAL_STATUSES, RETRYABLE_STATUSES, LeadStatus
from app.store import keys


def _lua_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lua_set(statuses: Iterable[LeadStatus]) -> str:
    return "{" + ", ".join(f"{status.value} = true" for status in sorted(statuses)) + "}"


# Shared Lua helpers, prepended to the scripts that record lead events and status counts.
# `move_status` is the one way a status changes: count, status index, and the retention sets when the
# new status is final (scored by that time: the purge pass applies the retention settings in force).
_LEAD_HELPERS = (
    f"local STATUS_INDEX = {_lua_string(keys.status_index_key(''))}\n"
    f"local SOURCE_INDEX = {_lua_string(keys.source_index_key(''))}\n"
    f"local SOURCES = {_lua_string(keys.sources_seen_key())}\n"
    f"local RETAINED_RECORDS = {_lua_string(keys.retained_records_key())}\n"
    f"local RETAINED_LEADS = {_lua_string(keys.retained_leads_key())}\n"
    f"local FINAL = {_lua_set(FINAL_STATUSES)}\n"
    f"local RETRYABLE = {_lua_set(RETRYABLE_STATUSES)}\n"
    + """
local function push_event(lead_key, events_suffix, now, status, detail)
  local events_key = lead_key .. events_suffix
  redis.call('LPUSH', events_key, cjson.encode({at = tonumber(now), status = status, detail = detail}))
  redis.call('LTRIM', events_key, 0, 19)
end
local function move_status(counts_key, lead_key, id, old, new, now)
  if old then
    redis.call('HINCRBY', counts_key, old, -1)
    redis.call('ZREM', STATUS_INDEX .. old, id)
  end
  redis.call('HINCRBY', counts_key, new, 1)
  redis.call('ZADD', STATUS_INDEX .. new, redis.call('HGET', lead_key, 'received_at') or now, id)
  if FINAL[new] then
    redis.call('ZADD', RETAINED_LEADS, now, id)
    redis.call('ZADD', RETAINED_RECORDS, now, id)
  end
end
local function index_source(lead_key, id, score)
  local source = redis.call('HGET', lead_key, 'source') or ''
  redis.call('ZADD', SOURCE_INDEX .. source, score, id)
  redis.call('SADD', SOURCES, source)
end
"""
)

# Shared by the scripts that make a lead `queued`: the per-source duplicate window over phones.
_PERSON_HELPER = """
local function person_status(person_key, now, status, detail, memory_ttl, window)
  if memory_ttl ~= '0' and status == 'queued' then
    local seen = tonumber(redis.call('GET', person_key) or '-1')
    if window ~= '0' and seen >= 0 and tonumber(now) - seen < tonumber(window) then
      return 'duplicate', 'same phone seen within the duplicate window'
    end
    redis.call('SET', person_key, now, 'EX', memory_ttl)
  end
  return status, detail
end
"""

ADMIT_LEAD = (
    _LEAD_HELPERS
    + _PERSON_HELPER
    + """
-- Store a new lead, unless its idempotency key already names one; mark a repeat person `duplicate`.
-- A `fetching` lead (Meta: record not retrieved yet) goes into the fetching set instead of the ready set.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] status counts, KEYS[4] ready zset,
-- KEYS[5] leads index zset, KEYS[6] idempotency string, KEYS[7] person string (last time seen),
-- KEYS[8] fetching zset
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] status, ARGV[4] event detail,
-- ARGV[5] idempotency ttl s (0: no idempotency key), ARGV[6] person memory ttl s (0: not recorded),
-- ARGV[7] duplicate window s (0: no check), ARGV[8] lead key prefix,
-- ARGV[9] when a `fetching` lead's retrieval is due if its job is lost, ARGV[10..] field, value pairs
-- Returns {id of the lead standing for this submission (the earlier one on a repeat), its status}.
if ARGV[5] ~= '0' then
  local existing = redis.call('GET', KEYS[6])
  if existing then
    return {existing, redis.call('HGET', ARGV[8] .. existing, 'status') or ''}
  end
  redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[5])
end
local status, detail = person_status(KEYS[7], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7])
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('HSET', KEYS[1], 'status', status)
redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), status = status, detail = detail}))
move_status(KEYS[3], KEYS[1], ARGV[1], nil, status, ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
index_source(KEYS[1], ARGV[1], ARGV[2])
if status == 'queued' then redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1]) end
if status == 'fetching' then redis.call('ZADD', KEYS[8], ARGV[9], ARGV[1]) end
return {ARGV[1], status}
"""
)

CLAIM_BATCH = (
    _LEAD_HELPERS
    + """
-- Take up to ARGV[2] due leads off the ready set into a new in-flight batch, atomically.
-- KEYS[1] ready zset, KEYS[2] in-flight zset, KEYS[3] status counts, KEYS[4] batch list
-- ARGV[1] now, ARGV[2] max records, ARGV[3] batch id, ARGV[4] visibility deadline,
-- ARGV[5] lead key prefix, ARGV[6] events key suffix
-- Returns a flat list: lead id, encrypted record, external id, received at, attempts, ... per lead.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local claimed = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local lead_key = ARGV[5] .. id
  local lead = redis.call('HMGET', lead_key, 'status', 'record', 'external_id', 'received_at', 'attempts')
  if lead[1] and lead[2] then
    redis.call('HSET', lead_key, 'status', 'sending', 'batch_id', ARGV[3], 'updated_at', ARGV[1])
    redis.call('HDEL', lead_key, 'next_attempt_at')
    push_event(lead_key, ARGV[6], ARGV[1], 'sending', 'batch ' .. ARGV[3])
    move_status(KEYS[3], lead_key, id, lead[1], 'sending', ARGV[1])
    claimed[#claimed + 1] = id
    out[#out + 1] = id
    out[#out + 1] = lead[2]
    out[#out + 1] = lead[3]
    out[#out + 1] = lead[4]
    out[#out + 1] = lead[5] or '0'
  end
end
if #claimed > 0 then
  redis.call('RPUSH', KEYS[4], unpack(claimed))
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
return out
"""
)

SETTLE_LEADS = (
    _LEAD_HELPERS
    + """
-- Apply upload outcomes to leads still in this batch; optionally release the batch.
-- KEYS[1] in-flight zset, KEYS[2] status counts, KEYS[3] ready zset, KEYS[4] batch list,
-- KEYS[5] delivered-this-minute counter, KEYS[6] failed-this-minute counter,
-- KEYS[7] latency samples list, KEYS[8] last delivery string
-- ARGV[1] now, ARGV[2] batch id, ARGV[3] lead key prefix, ARGV[4] events key suffix,
-- ARGV[5] "1" to release the batch, ARGV[6] JSON list of outcomes:
--   {id, status, detail, error?, ready_at?, next_attempt_at?, count_attempt}
-- A lead no longer `sending` in this batch (reclaimed meanwhile) is left alone.
-- Returns the number of leads changed.
local now = tonumber(ARGV[1])
local changed, delivered, failed = 0, 0, 0
for _, o in ipairs(cjson.decode(ARGV[6])) do
  local lead_key = ARGV[3] .. o.id
  local cur = redis.call('HMGET', lead_key, 'status', 'batch_id', 'received_at')
  if cur[1] == 'sending' and cur[2] == ARGV[2] then
    redis.call('HSET', lead_key, 'status', o.status, 'updated_at', ARGV[1])
    if o.count_attempt then redis.call('HINCRBY', lead_key, 'attempts', 1) end
    if o.error then redis.call('HSET', lead_key, 'error', o.error) end
    if o.next_attempt_at then redis.call('HSET', lead_key, 'next_attempt_at', o.next_attempt_at) end
    if o.ready_at then redis.call('ZADD', KEYS[3], o.ready_at, o.id) end
    if o.status == 'delivered' then
      redis.call('HSET', lead_key, 'delivered_at', ARGV[1])
      redis.call('HDEL', lead_key, 'error')
      redis.call('LPUSH', KEYS[7], tostring(now - tonumber(cur[3])))
      delivered = delivered + 1
    elseif o.status == 'rejected' or o.status == 'dead' then
      failed = failed + 1
    end
    push_event(lead_key, ARGV[4], ARGV[1], o.status, o.detail)
    move_status(KEYS[2], lead_key, o.id, cur[1], o.status, ARGV[1])
    changed = changed + 1
  end
end
if delivered > 0 then
  redis.call('INCRBY', KEYS[5], delivered)
  redis.call('EXPIRE', KEYS[5], 7200)
  redis.call('LTRIM', KEYS[7], 0, 999)
  redis.call('SET', KEYS[8], ARGV[1])
end
if failed > 0 then
  redis.call('INCRBY', KEYS[6], failed)
  redis.call('EXPIRE', KEYS[6], 7200)
end
if ARGV[5] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[4])
end
return changed
"""
)

RECLAIM_STALE_BATCHES = (
    _LEAD_HELPERS
    + """
-- Return the leads of batches whose visibility deadline passed (their worker died) to the queue.
-- KEYS[1] in-flight zset, KEYS[2] ready zset, KEYS[3] status counts
-- ARGV[1] now, ARGV[2] lead key prefix, ARGV[3] events key suffix, ARGV[4] batch key prefix
-- Returns the number of leads put back.
local batches = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
local returned = 0
for _, batch_id in ipairs(batches) do
  local batch_key = ARGV[4] .. batch_id
  for _, id in ipairs(redis.call('LRANGE', batch_key, 0, -1)) do
    local lead_key = ARGV[2] .. id
    local cur = redis.call('HMGET', lead_key, 'status', 'batch_id', 'received_at')
    if cur[1] == 'sending' and cur[2] == batch_id then
      redis.call('HSET', lead_key, 'status', 'queued', 'updated_at', ARGV[1])
      redis.call('ZADD', KEYS[2], cur[3], id)
      push_event(lead_key, ARGV[3], ARGV[1], 'queued', 'batch ' .. batch_id .. ' timed out in flight')
      move_status(KEYS[3], lead_key, id, 'sending', 'queued', ARGV[1])
      returned = returned + 1
    end
  end
  redis.call('DEL', batch_key)
  redis.call('ZREM', KEYS[1], batch_id)
end
return returned
"""
)

RESERVE_SLOT = """
-- Reserve the next upload slot of the shared careCycle budget (GCRA without burst).
-- KEYS[1] theoretical-arrival-time string, KEYS[2] request log zset
-- ARGV[1] now, ARGV[2] seconds between requests, ARGV[3] log window seconds
-- Returns {"ok", new tat} when the slot is taken, or {"wait", seconds} until one is free.
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > now then return {'wait', tostring(tat - now)} end
local new_tat = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], tostring(new_tat), 'EX', math.ceil(tonumber(ARGV[2]) + tonumber(ARGV[3])))
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
return {'ok', tostring(new_tat)}
"""

RELEASE_SLOT = """
-- Give back a slot that was reserved but not used, if nobody reserved one after it.
-- KEYS[1] theoretical-arrival-time string, KEYS[2] request log zset
-- ARGV[1] the tat the reservation returned, ARGV[2] seconds between requests, ARGV[3] reservation time
-- Returns 1 when given back.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], tostring(tonumber(ARGV[1]) - tonumber(ARGV[2])), 'KEEPTTL')
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""

BLOCK_UNTIL = """
-- Hold every upload until a time (careCycle's retryAfter), never shortening an existing hold.
-- KEYS[1] theoretical-arrival-time string
-- ARGV[1] time before which no request may be sent, ARGV[2] key ttl seconds
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > tat then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""

TAKE_PROBE = """
-- Let exactly one caller send the probe request of a pause, once per probe interval.
-- KEYS[1] pause hash
-- ARGV[1] now, ARGV[2] next probe time if this caller wins
-- Returns 1 to the winner (and moves the next probe time), 0 to everyone else.
local next_probe = tonumber(redis.call('HGET', KEYS[1], 'next_probe_at') or 'inf')
if next_probe == nil or next_probe > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'next_probe_at', ARGV[2])
return 1
"""

HIT_WINDOWS = """
-- Count one request in each of several fixed-window counters, unless one of them is already full.
-- KEYS[1..n] window counters (one per limit)
-- ARGV[1] window length in seconds (the counters' ttl), ARGV[2..n+1] the limit of each counter, in KEYS order
-- Returns 0 when the request was counted everywhere, else the 1-based index of the first full counter
-- (nothing is counted then, so a refused request spends no budget).
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then return i end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 0
"""


COMPLETE_FETCH = (
    _LEAD_HELPERS
    + _PERSON_HELPER
    + """
-- End a lead's Graph retrieval: store its record and queue it (or `duplicate` within the person window),
-- or settle it without a record (`rejected`, `dead`, `test`). Only a lead still `fetching` is changed.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] status counts, KEYS[4] ready zset, KEYS[5] fetching zset,
-- KEYS[6] person string (last time seen), KEYS[7] failed-this-minute counter
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] status, ARGV[4] event detail, ARGV[5] error ('' for none),
-- ARGV[6] person memory ttl s (0: not recorded), ARGV[7] duplicate window s (0: no check),
-- ARGV[8..] field, value pairs (record, external_id, phone, warnings)
-- Returns the lead's new status, or '' when it was no longer `fetching` (left alone).
local old = redis.call('HGET', KEYS[1], 'status')
if old ~= 'fetching' then
  redis.call('ZREM', KEYS[5], ARGV[1])
  return ''
end
local status, detail = person_status(KEYS[6], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7])
if #ARGV >= 9 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
redis.call('HSET', KEYS[1], 'status', status, 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'next_attempt_at')
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) else redis.call('HDEL', KEYS[1], 'error') end
redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), status = status, detail = detail}))
redis.call('LTRIM', KEYS[2], 0, 19)
move_status(KEYS[3], KEYS[1], ARGV[1], old, status, ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[1])
if status == 'queued' then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
elseif status == 'rejected' or status == 'dead' then
  redis.call('INCRBY', KEYS[7], 1)
  redis.call('EXPIRE', KEYS[7], 7200)
end
return status
"""
)

DEFER_FETCH = """
-- Keep a lead `fetching` and set when its retrieval is tried next (a transient fault, or retrieval paused).
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] fetching zset
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] next try time, ARGV[4] reason, ARGV[5] "1" to count a failed try
-- Returns 1 when deferred, 0 when the lead was no longer `fetching`.
if redis.call('HGET', KEYS[1], 'status') ~= 'fetching' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2], 'next_attempt_at', ARGV[3], 'error', ARGV[4])
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[1], 'fetch_attempts', 1) end
redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), status = 'fetching', detail = ARGV[4]}))
redis.call('LTRIM', KEYS[2], 0, 19)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""

CLAIM_DUE_FETCHES = """
-- Take the Meta leads whose retrieval is due, pushing each one's next try out by a lease, atomically,
-- so that of several workers sweeping at once exactly one queues a fetch job per lead.
-- KEYS[1] fetching zset
-- ARGV[1] now, ARGV[2] lease end (the next try if this fetch is lost too), ARGV[3] max leads
-- Returns the lead ids taken.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


RETRY_LEADS = (
    _LEAD_HELPERS
    + """
-- Re-queue `rejected` or `dead` leads for an operator: `queued`, ready now, error cleared, attempts kept,
-- out of the retention sets again (and any backstop expiry removed).
-- KEYS[1] status counts, KEYS[2] ready zset, KEYS[3] retained-records zset, KEYS[4] retained-leads zset
-- ARGV[1] now, ARGV[2] event detail, ARGV[3] lead key prefix, ARGV[4] events key suffix, ARGV[5..] lead ids
-- Returns per lead a pair {outcome, status before ('' if none)}; outcome is 'requeued', 'missing' (no such
-- lead), 'not_retryable' (another status) or 'no_record' (nothing to send: its record was never stored).
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local lead_key = ARGV[3] .. id
  local status = redis.call('HGET', lead_key, 'status')
  local outcome = 'requeued'
  if not status then
    outcome, status = 'missing', ''
  elseif not RETRYABLE[status] then
    outcome = 'not_retryable'
  elseif redis.call('HEXISTS', lead_key, 'record') == 0 then
    outcome = 'no_record'
  else
    redis.call('HSET', lead_key, 'status', 'queued', 'updated_at', ARGV[1])
    redis.call('HDEL', lead_key, 'error', 'next_attempt_at', 'batch_id')
    redis.call('PERSIST', lead_key)
    redis.call('PERSIST', lead_key .. ARGV[4])
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    push_event(lead_key, ARGV[4], ARGV[1], 'queued', ARGV[2])
    move_status(KEYS[1], lead_key, id, status, 'queued', ARGV[1])
  end
  out[#out + 1] = outcome
  out[#out + 1] = status
end
return out
"""
)

PURGE_RETAINED = (
    _LEAD_HELPERS
    + """
-- Apply retention to leads that reached a final status: for those settled before ARGV[1], delete the
-- encrypted record (kept for `rejected`/`dead`, which an operator may retry) and set a backstop expiry on
-- hash and events; those settled before ARGV[2] are deleted outright: hash, events, index entries, count.
-- At most ARGV[3] leads per stage and call.
-- KEYS[1] retained-records zset, KEYS[2] retained-leads zset, KEYS[3] status counts, KEYS[4] leads index zset,
-- KEYS[5] sources set
-- ARGV[1] records cutoff, ARGV[2] leads cutoff, ARGV[3] max leads per stage, ARGV[4] lead key prefix,
-- ARGV[5] events key suffix, ARGV[6] backstop expiry s (should no purge pass delete the lead in time)
-- Returns {records deleted, leads deleted}.
local records, leads = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local lead_key = ARGV[4] .. id
  local status = redis.call('HGET', lead_key, 'status')
  if status and FINAL[status] then
    if not RETRYABLE[status] then records = records + redis.call('HDEL', lead_key, 'record') end
    redis.call('EXPIRE', lead_key, ARGV[6])
    redis.call('EXPIRE', lead_key .. ARGV[5], ARGV[6])
  end
  redis.call('ZREM', KEYS[1], id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local lead_key = ARGV[4] .. id
  local cur = redis.call('HMGET', lead_key, 'status', 'source')
  if cur[1] and FINAL[cur[1]] then
    redis.call('HINCRBY', KEYS[3], cur[1], -1)
    redis.call('ZREM', STATUS_INDEX .. cur[1], id)
    redis.call('ZREM', SOURCE_INDEX .. (cur[2] or ''), id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('DEL', lead_key, lead_key .. ARGV[5])
    leads = leads + 1
  elseif not cur[1] then
    -- The hash expired first (no purge pass for a long while): its status and source are unknown, so try
    -- every final status index (fixing the count of the one that held it) and every source index.
    for status in pairs(FINAL) do
      if redis.call('ZREM', STATUS_INDEX .. status, id) == 1 then redis.call('HINCRBY', KEYS[3], status, -1) end
    end
    for _, source in ipairs(redis.call('SMEMBERS', KEYS[5])) do redis.call('ZREM', SOURCE_INDEX .. source, id) end
    redis.call('ZREM', KEYS[4], id)
    redis.call('DEL', lead_key .. ARGV[5])
    leads = leads + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return {records, leads}
"""
)


@dataclass(frozen=True)
class Scripts:
    """The relay's Lua scripts registered on one Redis connection (EVALSHA, loaded on demand)."""

    admit_lead: Script
    claim_batch: Script
    settle_leads: Script
    reclaim_stale_batches: Script
    reserve_slot: Script
    release_slot: Script
    block_until: Script
    take_probe: Script
    complete_fetch: Script
    defer_fetch: Script
    claim_due_fetches: Script
    hit_windows: Script
    retry_leads: Script
    purge_retained: Script

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        """Register every script on `redis`."""
        sources: dict[str, str] = {
            "admit_lead": ADMIT_LEAD,
            "claim_batch": CLAIM_BATCH,
            "settle_leads": SETTLE_LEADS,
            "reclaim_stale_batches": RECLAIM_STALE_BATCHES,
            "reserve_slot": RESERVE_SLOT,
            "release_slot": RELEASE_SLOT,
            "block_until": BLOCK_UNTIL,
            "take_probe": TAKE_PROBE,
            "complete_fetch": COMPLETE_FETCH,
            "defer_fetch": DEFER_FETCH,
            "claim_due_fetches": CLAIM_DUE_FETCHES,
            "hit_windows": HIT_WINDOWS,
            "retry_leads": RETRY_LEADS,
            "purge_retained": PURGE_RETAINED,
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
    """Run script calls in one round trip with EVALSHA; load the scripts and retry once on NOSCRIPT.

    redis-py's own pipelined scripts ask SCRIPT EXISTS before every execute: an extra round trip on
    the intake path. Scripts are loaded when first needed (a fresh or restarted Redis) instead.
    """
    for attempt in (1, 2):
        pipe = redis.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        try:
            return list(pipe.execute())
        except NoScriptError:
            if attempt == 2:
                raise
            for script in {call.script.sha: call.script for call in calls}.values():
                redis.script_load(script.script)
    raise AssertionError("unreachable")
