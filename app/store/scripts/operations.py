"""Scripts behind operator actions and upkeep: retrying settled leads, purging retained ones, and taking the intake
counts workers hand to the web tier."""

from __future__ import annotations

from app.store import keys
from app.store.scripts.transitions import LEAD_HELPERS, PERSON_HELPER, lua_string

RETRY_LEADS = (
    LEAD_HELPERS
    + f"local RECORD, SUBMISSION = {lua_string(keys.RECORD_FIELD)}, {lua_string(keys.SUBMISSION_FIELD)}\n"
    + f"local RETRIED_AT, FAILED_AT = {lua_string(keys.RETRIED_AT_FIELD)}, {lua_string(keys.FAILED_AT_FIELD)}\n"
    + f"local LEADGEN_ID = {lua_string(keys.LEADGEN_ID_FIELD)}\n"
    + """
-- Re-queue `rejected` or `dead` leads for an operator (and `duplicate` ones, retried by id: the operator's
-- decision to send the person again): `queued`, ready now, error cleared, attempts kept, the maximum age of its
-- retries counted afresh from now (one transient failure would otherwise make a lead past it `dead` again),
-- out of the retention sets again (and any expiry removed: hashes of earlier versions carried one).
-- A Meta lead that never got its record from the Graph API (and kept no refused submission) is retrieved
-- again instead: `fetching`, due now, its retrieval attempts reset.
-- KEYS[1] status counts, KEYS[2] ready zset, KEYS[3] retained-records zset, KEYS[4] retained-leads zset,
-- KEYS[5] fetching zset
-- ARGV[1] now, ARGV[2] event detail, ARGV[3] lead key prefix, ARGV[4] events key suffix,
-- ARGV[5] '1' to take `duplicate` leads too, ARGV[6..] lead ids
-- Returns per lead a pair {outcome, status before ('' if none)}; outcome is 'requeued', 'refetching',
-- 'missing' (no such lead), 'not_retryable' (another status) or 'no_record' (nothing to send: its record
-- was never stored).
local function take_back(lead_key, id, status, new_status, due_key, cleared)
  redis.call('HSET', lead_key, 'status', new_status, 'updated_at', ARGV[1], RETRIED_AT, ARGV[1])
  redis.call('HDEL', lead_key, unpack(cleared))
  redis.call('PERSIST', lead_key)
  redis.call('PERSIST', lead_key .. ARGV[4])
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', due_key, ARGV[1], id)
  push_event(lead_key, ARGV[4], ARGV[1], new_status, ARGV[2])
  move_status(KEYS[1], lead_key, id, status, new_status, ARGV[1])
end
local takes = ARGV[5] == '1' and RETRYABLE_BY_ID or RETRYABLE
local out = {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local lead_key = ARGV[3] .. id
  local status = redis.call('HGET', lead_key, 'status')
  local outcome = 'requeued'
  if not status then
    outcome, status = 'missing', ''
  elseif not takes[status] then
    outcome = 'not_retryable'
  elseif redis.call('HEXISTS', lead_key, RECORD) == 0 then
    outcome = 'no_record'
    if redis.call('HEXISTS', lead_key, SUBMISSION) == 0 and redis.call('HEXISTS', lead_key, LEADGEN_ID) == 1 then
      outcome = 'refetching'
      redis.call('HSET', lead_key, 'fetch_attempts', 0)
      take_back(lead_key, id, status, 'fetching', KEYS[5], {'error', 'next_attempt_at'})
    end
  else
    -- careCycle's earlier 5xx is forgotten too: a lead of a fault group is still sent apart, but only a 5xx after
    -- this retry tells whether careCycle fails on it again.
    take_back(lead_key, id, status, 'queued', KEYS[2], {'error', 'next_attempt_at', 'batch_id', FAILED_AT})
  end
  out[#out + 1] = outcome
  out[#out + 1] = status
end
return out
"""
)

ADOPT_RECORD = (
    LEAD_HELPERS
    + PERSON_HELPER
    + """
-- Give a `rejected`/`dead` lead the careCycle record its kept submission now normalizes to: the record and
-- what status shows of it are set, the submission deleted, and the person checked against the source's
-- duplicate window as at intake (a repeat person becomes `duplicate`). Nothing changes unless the lead still
-- holds that submission in a retryable status.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] status counts, KEYS[4] person string
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] sealed record, ARGV[4] external id, ARGV[5] masked phone,
-- ARGV[6] warnings (JSON list), ARGV[7] record field name, ARGV[8] submission field name,
-- ARGV[9] person memory ttl s (0: not recorded), ARGV[10] duplicate window s (0: no check)
-- Returns 'queued' (ready to be re-queued), {'duplicate', why}, or '' when nothing was changed.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not RETRYABLE[status] or redis.call('HEXISTS', KEYS[1], ARGV[8]) == 0 then return '' end
redis.call('HSET', KEYS[1], ARGV[7], ARGV[3], 'external_id', ARGV[4], 'phone', ARGV[5], 'warnings', ARGV[6])
redis.call('HDEL', KEYS[1], ARGV[8])
local next_status, detail = person_status(KEYS[4], ARGV[2], 'queued', '', ARGV[9], ARGV[10], ARGV[1])
if next_status == 'duplicate' then
  redis.call('HSET', KEYS[1], 'status', 'duplicate', 'updated_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'error')
  append_event(KEYS[2], ARGV[2], 'duplicate', detail)
  move_status(KEYS[3], KEYS[1], ARGV[1], status, 'duplicate', ARGV[2])
  return {'duplicate', detail}
end
return 'queued'
"""
)

PURGE_RETAINED = (
    LEAD_HELPERS
    + f"local RECORD, SUBMISSION = {lua_string(keys.RECORD_FIELD)}, {lua_string(keys.SUBMISSION_FIELD)}\n"
    + """
-- Apply retention to leads that reached a final status: for those settled before ARGV[1], delete the
-- encrypted record, or the refused submission a `test` lead kept (both kept for `rejected`/`dead`/`duplicate`,
-- which an operator may retry); those settled before ARGV[2] are deleted outright: hash, events, index entries, counts.
-- Nothing expires on its own: a Redis expiry set under one retention would outlast a change of it, and the
-- lead would vanish while still counted.
-- At most ARGV[3] leads per stage and call.
-- KEYS[1] retained-records zset, KEYS[2] retained-leads zset, KEYS[3] status counts, KEYS[4] leads index zset,
-- KEYS[5] sources set, KEYS[6] since when leads are counted by source
-- ARGV[1] records cutoff, ARGV[2] leads cutoff, ARGV[3] max leads per stage, ARGV[4] lead key prefix,
-- ARGV[5] events key suffix
-- Returns {records deleted, leads deleted, 1 when a stage read a full chunk (more may be due) else 0}: a chunk
-- can delete nothing (the records of leads an operator may retry are kept) and still not be the last one.
local records, leads = 0, 0
local due_records = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due_records) do
  local lead_key = ARGV[4] .. id
  local status = redis.call('HGET', lead_key, 'status')
  if status and FINAL[status] and not RETRYABLE_BY_ID[status] then
    if redis.call('HDEL', lead_key, RECORD, SUBMISSION) > 0 then
      records = records + 1
      -- Redis keeps a hash in its large encoding once a long value was in it, after the value is gone: written
      -- afresh, what the lead keeps for the retention days (short fields) takes the compact one, half the memory.
      -- A lead hash has no expiry to lose (see above).
      local rest = redis.call('HGETALL', lead_key)
      redis.call('DEL', lead_key)
      redis.call('HSET', lead_key, unpack(rest))
    end
  end
  redis.call('ZREM', KEYS[1], id)
end
local due_leads = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due_leads) do
  local lead_key = ARGV[4] .. id
  local cur = redis.call('HMGET', lead_key, 'status', 'source', SOURCE_COUNTED)
  if cur[1] and FINAL[cur[1]] then
    redis.call('HINCRBY', KEYS[3], cur[1], -1)
    if cur[2] and cur[3] then redis.call('HINCRBY', SOURCE_COUNTS .. cur[2], cur[1], -1) end
    redis.call('ZREM', STATUS_INDEX .. cur[1], id)
    redis.call('ZREM', SOURCE_INDEX .. (cur[2] or ''), id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('DEL', lead_key, lead_key .. ARGV[5])
    leads = leads + 1
  elseif not cur[1] then
    -- The hash is gone already (deleted by hand, or expired under an earlier version): its status and source
    -- are unknown, so try every final status index (fixing the count of the one that held it) and every
    -- source index. Its mark is gone with it: it was counted by its source when taken in (the status index's score)
    -- since counting by source began. A web process of an earlier release may have taken it in after then without
    -- the mark: a source's count is never driven below zero.
    local held_in, received_at = nil, nil
    for status in pairs(FINAL) do
      local score = redis.call('ZSCORE', STATUS_INDEX .. status, id)
      if score then
        redis.call('ZREM', STATUS_INDEX .. status, id)
        redis.call('HINCRBY', KEYS[3], status, -1)
        held_in, received_at = status, tonumber(score)
      end
    end
    local began = tonumber(redis.call('GET', KEYS[6]) or '')
    local counted = held_in and began and received_at >= began
    for _, source in ipairs(redis.call('SMEMBERS', KEYS[5])) do
      local by_source = SOURCE_COUNTS .. source
      if redis.call('ZREM', SOURCE_INDEX .. source, id) == 1 and counted
          and tonumber(redis.call('HGET', by_source, held_in) or '0') > 0 then
        redis.call('HINCRBY', by_source, held_in, -1)
      end
    end
    redis.call('ZREM', KEYS[4], id)
    redis.call('DEL', lead_key .. ARGV[5])
    leads = leads + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
local full = (#due_records == tonumber(ARGV[3]) or #due_leads == tonumber(ARGV[3])) and 1 or 0
return {records, leads, full}
"""
)

TAKE_INTAKE_HANDOVER = """
-- Take the intake counts workers handed over, once: move them under this take's receipt, kept ARGV[1] s.
-- KEYS[1] hand-over hash, KEYS[2] this take's receipt hash
-- ARGV[1] how long the receipt is kept, s
-- The same take run again (its answer was lost: the client sent it once more, or the web process asks again at its
-- next scrape) answers the counts it moved the first time, and moves nothing more.
-- Returns the counts taken, as HGETALL gives them (none: an empty list).
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"""
