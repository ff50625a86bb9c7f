"""Every Lua script the relay runs, each headed by its KEYS and ARGV, registered once per connection.

Scripts that touch many leads build lead keys from a prefix and suffix passed in ARGV (spelled in
`keys.py`), so they address keys not listed in KEYS: fine on one Redis or a Sentinel-managed
primary, which is what the relay supports, not on Redis Cluster.
Numbers are returned as strings because Redis truncates Lua numbers to integers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from redis import Redis
from redis.commands.core import Script

# Shared Lua helpers, prepended to the scripts that record lead events and status counts.
_LEAD_HELPERS = """
local function push_event(lead_key, events_suffix, now, status, detail)
  local events_key = lead_key .. events_suffix
  redis.call('LPUSH', events_key, cjson.encode({at = tonumber(now), status = status, detail = detail}))
  redis.call('LTRIM', events_key, 0, 19)
end
local function move_count(counts_key, old, new)
  if old then redis.call('HINCRBY', counts_key, old, -1) end
  redis.call('HINCRBY', counts_key, new, 1)
end
"""

ADMIT_LEAD = (
    _LEAD_HELPERS
    + """
-- Store a new lead, unless its idempotency key already names one; mark a repeat person `duplicate`.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] status counts, KEYS[4] ready zset,
-- KEYS[5] leads index zset, KEYS[6] idempotency string, KEYS[7] person string (last time seen)
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] status, ARGV[4] event detail,
-- ARGV[5] idempotency ttl s (0: no idempotency key), ARGV[6] person memory ttl s (0: not recorded),
-- ARGV[7] duplicate window s (0: no check), ARGV[8] lead key prefix, ARGV[9..] field, value pairs
-- Returns {id of the lead standing for this submission (the earlier one on a repeat), its status}.
if ARGV[5] ~= '0' then
  local existing = redis.call('GET', KEYS[6])
  if existing then
    return {existing, redis.call('HGET', ARGV[8] .. existing, 'status') or ''}
  end
  redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[5])
end
local status, detail = ARGV[3], ARGV[4]
if ARGV[6] ~= '0' and status == 'queued' then
  local seen = tonumber(redis.call('GET', KEYS[7]) or '-1')
  if ARGV[7] ~= '0' and seen >= 0 and tonumber(ARGV[2]) - seen < tonumber(ARGV[7]) then
    status, detail = 'duplicate', 'same phone seen within the duplicate window'
  else
    redis.call('SET', KEYS[7], ARGV[2], 'EX', ARGV[6])
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('HSET', KEYS[1], 'status', status)
redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), status = status, detail = detail}))
move_count(KEYS[3], nil, status)
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
if status == 'queued' then redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1]) end
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
    move_count(KEYS[3], lead[1], 'sending')
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
    move_count(KEYS[2], cur[1], o.status)
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
      move_count(KEYS[3], 'sending', 'queued')
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
        }
        registered: dict[str, Any] = {f.name: redis.register_script(sources[f.name]) for f in fields(cls)}
        return cls(**registered)
