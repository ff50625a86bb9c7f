"""Scripts that move leads through delivery: claim a batch, settle its outcomes, reclaim lost batches."""

from __future__ import annotations

from app.store import keys
from app.store.scripts.transitions import LEAD_HELPERS, lua_string

# The lead hash fields of a lead careCycle failed with a 5xx (see app.store.keys).
FAULT_FIELDS = (
    f"local FAILED_AT, FAULT_GROUP = {lua_string(keys.FAILED_AT_FIELD)}, {lua_string(keys.FAULT_GROUP_FIELD)}\n"
)
# The lead hash field of an operator's last retry (see app.store.keys).
RETRIED_FIELD = f"local RETRIED_AT = {lua_string(keys.RETRIED_AT_FIELD)}\n"
# The fields of the delivered total (see app.store.keys).
DELIVERED_TOTAL_FIELDS = (
    f"local TOTAL_COUNT, TOTAL_SINCE = {lua_string(keys.DELIVERED_TOTAL_COUNT_FIELD)},"
    f" {lua_string(keys.DELIVERED_TOTAL_SINCE_FIELD)}\n"
)

CLAIM_BATCH = (
    LEAD_HELPERS
    + FAULT_FIELDS
    + RETRIED_FIELD
    + """
-- Take up to ARGV[2] due leads off the ready set into a new in-flight batch, atomically. A batch holds the leads
-- of one kind, that of the first due lead: leads careCycle never failed with a 5xx; those it did (careCycle may
-- have been down); or one fault group's (careCycle failed their batch again while it answered others). So a record
-- careCycle keeps failing on fails no lead of another kind with it. Up to twice ARGV[2] due leads are looked at,
-- those of another kind left where they are.
-- KEYS[1] ready zset, KEYS[2] in-flight zset, KEYS[3] status counts, KEYS[4] batch list
-- ARGV[1] now, ARGV[2] max records, ARGV[3] batch id, ARGV[4] visibility deadline,
-- ARGV[5] lead key prefix, ARGV[6] events key suffix
-- Returns a flat list: lead id, encrypted record, external id, received at, attempts, failed at ('' if never),
-- fault group ('' if none), an operator's last retry ('' if none), ... per lead.
local max_records = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 2 * max_records)
local out = {}
local claimed = {}
local group = nil
for _, id in ipairs(ids) do
  if #claimed >= max_records then break end
  local lead_key = ARGV[5] .. id
  local lead = redis.call('HMGET', lead_key, 'status', 'record', 'external_id', 'received_at', 'attempts',
    FAILED_AT, FAULT_GROUP, RETRIED_AT)
  local lead_group = lead[7] or (lead[6] and '5xx' or '')
  if lead[1] and lead[2] and group == nil then group = lead_group end
  if lead[1] and lead[2] and lead_group ~= group then
    -- Another kind's: it waits for a batch of its own kind.
  elseif lead[1] and lead[2] then
    redis.call('ZREM', KEYS[1], id)
    if lead[1] == 'retrying' then
      -- Its retry time has come: back in the queue (the lifecycle's retrying -> queued), then sent.
      push_event(lead_key, ARGV[6], ARGV[1], 'queued', 'retry due')
      move_status(KEYS[3], lead_key, id, 'retrying', 'queued', ARGV[1])
      lead[1] = 'queued'
    end
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
    out[#out + 1] = lead[6] or ''
    out[#out + 1] = lead[7] or ''
    out[#out + 1] = lead[8] or ''
  else
    redis.call('ZREM', KEYS[1], id)
    if lead[1] == 'queued' or lead[1] == 'retrying' then
      -- Waiting for delivery with nothing to send: say so, rather than drop it from the queue unseen.
      redis.call('HSET', lead_key, 'status', 'dead', 'updated_at', ARGV[1], 'error', 'no record to send')
      push_event(lead_key, ARGV[6], ARGV[1], 'dead', 'no record to send')
      move_status(KEYS[3], lead_key, id, lead[1], 'dead', ARGV[1])
    end
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
    LEAD_HELPERS
    + FAULT_FIELDS
    + DELIVERED_TOTAL_FIELDS
    + """
-- Apply upload outcomes to leads still in this batch; optionally release the batch.
-- KEYS[1] in-flight zset, KEYS[2] status counts, KEYS[3] ready zset, KEYS[4] batch list,
-- KEYS[5] delivered-this-minute counter, KEYS[6] failed-this-minute counter,
-- KEYS[7] latency samples list ("<delivered at> <latency>"), KEYS[8] last delivery string,
-- KEYS[9] delivered-this-second counter, KEYS[10] failed-this-second counter,
-- KEYS[11] delivered total hash (only grows: how many, since when)
-- ARGV[1] now, ARGV[2] batch id, ARGV[3] lead key prefix, ARGV[4] events key suffix,
-- ARGV[5] "1" to release the batch, ARGV[6] JSON list of outcomes:
--   {id, status, detail, error?, ready_at?, next_attempt_at?, failed_at?, fault_group?, count_attempt}
-- A lead careCycle took or refused leaves its fault group (an operator's retry of it starts afresh).
-- A lead no longer `sending` in this batch (reclaimed meanwhile) is left alone.
-- Returns the ids of the leads changed.
local now = tonumber(ARGV[1])
local changed, delivered, failed = {}, 0, 0
for _, o in ipairs(cjson.decode(ARGV[6])) do
  local lead_key = ARGV[3] .. o.id
  local cur = redis.call('HMGET', lead_key, 'status', 'batch_id', 'received_at')
  if cur[1] == 'sending' and cur[2] == ARGV[2] then
    redis.call('HSET', lead_key, 'status', o.status, 'updated_at', ARGV[1])
    if o.count_attempt then redis.call('HINCRBY', lead_key, 'attempts', 1) end
    if o.error then redis.call('HSET', lead_key, 'error', o.error) end
    if o.next_attempt_at then redis.call('HSET', lead_key, 'next_attempt_at', o.next_attempt_at) end
    if o.failed_at then redis.call('HSET', lead_key, FAILED_AT, o.failed_at) end
    if o.fault_group then redis.call('HSET', lead_key, FAULT_GROUP, o.fault_group) end
    if o.ready_at then redis.call('ZADD', KEYS[3], o.ready_at, o.id) end
    if o.status == 'delivered' then
      redis.call('HSET', lead_key, 'delivered_at', ARGV[1])
      redis.call('HDEL', lead_key, 'error', FAILED_AT, FAULT_GROUP)
      redis.call('LPUSH', KEYS[7], ARGV[1] .. ' ' .. tostring(now - tonumber(cur[3])))
      delivered = delivered + 1
    elseif o.status == 'rejected' or o.status == 'dead' then
      if o.status == 'rejected' then redis.call('HDEL', lead_key, FAILED_AT, FAULT_GROUP) end
      failed = failed + 1
    end
    push_event(lead_key, ARGV[4], ARGV[1], o.status, o.detail)
    move_status(KEYS[2], lead_key, o.id, cur[1], o.status, ARGV[1])
    changed[#changed + 1] = o.id
  end
end
if delivered > 0 then
  count_settled(KEYS[5], KEYS[9], delivered)
  redis.call('LTRIM', KEYS[7], 0, 999)
  redis.call('SET', KEYS[8], ARGV[1])
  redis.call('HINCRBY', KEYS[11], TOTAL_COUNT, delivered)
  redis.call('HSETNX', KEYS[11], TOTAL_SINCE, ARGV[1])
end
if failed > 0 then count_settled(KEYS[6], KEYS[10], failed) end
if ARGV[5] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[4])
end
return changed
"""
)

RECLAIM_STALE_BATCHES = (
    LEAD_HELPERS
    + RETRIED_FIELD
    + """
-- Return the leads of batches whose visibility deadline passed (their worker died) to the queue.
-- Each spends an attempt (its upload may have gone out); one past the maximum age (from its receipt, or from an
-- operator's later retry) is `dead` instead, so a batch that never settles (its worker dying each time) cannot go
-- round forever.
-- KEYS[1] in-flight zset, KEYS[2] ready zset, KEYS[3] status counts, KEYS[4] failed-this-minute counter,
-- KEYS[5] failed-this-second counter
-- ARGV[1] now, ARGV[2] lead key prefix, ARGV[3] events key suffix, ARGV[4] batch key prefix,
-- ARGV[5] maximum age s
-- Returns the number of leads put back or given up.
local batches = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
local returned, dead = 0, 0
for _, batch_id in ipairs(batches) do
  local batch_key = ARGV[4] .. batch_id
  for _, id in ipairs(redis.call('LRANGE', batch_key, 0, -1)) do
    local lead_key = ARGV[2] .. id
    local cur = redis.call('HMGET', lead_key, 'status', 'batch_id', 'received_at', RETRIED_AT)
    if cur[1] == 'sending' and cur[2] == batch_id then
      local lost = 'batch ' .. batch_id .. ' timed out in flight'
      redis.call('HINCRBY', lead_key, 'attempts', 1)
      local retries_since = math.max(tonumber(cur[3] or ARGV[1]), tonumber(cur[4] or '0'))
      if tonumber(ARGV[1]) - retries_since >= tonumber(ARGV[5]) then
        local reason = 'gave up after maximum age: ' .. lost
        redis.call('HSET', lead_key, 'status', 'dead', 'updated_at', ARGV[1], 'error', reason)
        push_event(lead_key, ARGV[3], ARGV[1], 'dead', reason)
        move_status(KEYS[3], lead_key, id, 'sending', 'dead', ARGV[1])
        dead = dead + 1
      else
        redis.call('HSET', lead_key, 'status', 'queued', 'updated_at', ARGV[1])
        redis.call('ZADD', KEYS[2], cur[3], id)
        push_event(lead_key, ARGV[3], ARGV[1], 'queued', lost)
        move_status(KEYS[3], lead_key, id, 'sending', 'queued', ARGV[1])
      end
      returned = returned + 1
    end
  end
  redis.call('DEL', batch_key)
  redis.call('ZREM', KEYS[1], batch_id)
end
if dead > 0 then count_settled(KEYS[4], KEYS[5], dead) end
return returned
"""
)

RELEASE_RETRYING = (
    LEAD_HELPERS
    + FAULT_FIELDS
    + """
-- careCycle read an upload: note when, and if it was failing, make the oldest retrying leads due now, in the order
-- they came in, rather than each at the end of its backoff (which may be minutes away, with careCycle idle
-- meanwhile). A lead of a fault group is left to its backoff: careCycle failed its batch again while it answered
-- others, so its answering again says nothing of that batch (it would otherwise be sent again at every answer).
-- The failing spell ends with the call that finds no retrying lead left, so that a release Redis cuts short
-- is taken up again by the next answer.
-- KEYS[1] retrying status index (scored by receipt time), KEYS[2] ready zset, KEYS[3] status counts,
-- KEYS[4] careCycle failing hash, KEYS[5] careCycle answered-at string
-- ARGV[1] now, ARGV[2] how many at most, ARGV[3] lead key prefix, ARGV[4] events key suffix,
-- ARGV[5] index entries to pass over (the fault groups' leads earlier calls of this release left)
-- Returns {leads made due, index entries looked at, of them left to their backoff}: fewer looked at than ARGV[2]
-- means none is left (the spell is over); {-1, 0, 0} when careCycle was not failing (or the spell ended
-- meanwhile): nothing was made due.
if tonumber(redis.call('GET', KEYS[5]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[5], ARGV[1]) end
if redis.call('EXISTS', KEYS[4]) == 0 then return {-1, 0, 0} end
local first = tonumber(ARGV[5])
local ids = redis.call('ZRANGE', KEYS[1], first, first + tonumber(ARGV[2]) - 1)
local released, left = 0, 0
for _, id in ipairs(ids) do
  local lead_key = ARGV[3] .. id
  local cur = redis.call('HMGET', lead_key, 'status', 'received_at', FAULT_GROUP)
  if cur[1] == 'retrying' and cur[3] then
    left = left + 1
  elseif cur[1] == 'retrying' then
    redis.call('HSET', lead_key, 'status', 'queued', 'updated_at', ARGV[1])
    redis.call('HDEL', lead_key, 'next_attempt_at')
    redis.call('ZADD', KEYS[2], cur[2] or ARGV[1], id)
    push_event(lead_key, ARGV[4], ARGV[1], 'queued', 'careCycle answers again')
    move_status(KEYS[3], lead_key, id, 'retrying', 'queued', ARGV[1], cur[2])
    released = released + 1
  else
    -- An index entry without its lead (purged): drop it, or it would head the index for ever.
    redis.call('ZREM', KEYS[1], id)
  end
end
if #ids < tonumber(ARGV[2]) then redis.call('DEL', KEYS[4]) end
return {released, #ids, left}
"""
)
