"""Scripts that let a lead in and take up, end or defer its Meta retrieval: admission and the `fetching` leads."""

from __future__ import annotations

from app.store.scripts.limits import WINDOW_HELPER
from app.store.scripts.transitions import EVENT_HELPER, LEAD_HELPERS, PERSON_HELPER

ADMIT_LEAD = (
    LEAD_HELPERS
    + PERSON_HELPER
    + WINDOW_HELPER
    + """
-- Store a new lead, unless its idempotency key already names one; mark a repeat person `duplicate`.
-- A `fetching` lead (Meta: record not retrieved yet) goes into the fetching set instead of the ready set.
-- With rate-limit counters (form posts), nothing happens unless the post passes them: one round trip.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] status counts, KEYS[4] ready zset,
-- KEYS[5] leads index zset, KEYS[6] idempotency string, KEYS[7] person string (last time seen | lead id),
-- KEYS[8] fetching zset, KEYS[9] failed-this-minute counter, KEYS[10] failed-this-second counter,
-- KEYS[11..] fixed-window rate-limit counters (none: no limit)
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] status, ARGV[4] event detail,
-- ARGV[5] idempotency ttl s (0: no idempotency key), ARGV[6] person memory ttl s (0: not recorded),
-- ARGV[7] duplicate window s (0: no check), ARGV[8] lead key prefix,
-- ARGV[9] when a `fetching` lead's retrieval is due if its job is lost, ARGV[10] source,
-- ARGV[11] '1' when the idempotency key marks a repeat after its lead was purged (Meta's leadgen ids), else a new
-- lead takes over a key naming a purged lead (one set for longer, under a retention lowered since),
-- ARGV[12] rate-limit window s, ARGV[13..12+n] the limit of each counter, then field, value pairs
-- Returns {id of the lead standing for this submission, its status}; on a repeat of the idempotency key,
-- {the earlier lead's id, its status ('' when purged), the digest of the submission it was taken with ('' for none)};
-- or {'', 'throttled', position of the full counter}: nothing was stored or counted.
-- A lead already stored under this id is this admission run again (redis-py sends a command once more when
-- its connection drops before the reply): it answers the lead's id and status and changes nothing.
local stored = redis.call('HGET', KEYS[1], 'status')
if stored then return {ARGV[1], stored} end
local limits = #KEYS - 10
if limits > 0 then
  local full = hit_windows(KEYS, 11, ARGV[12], ARGV, 13)
  if full > 0 then return {'', 'throttled', tostring(full)} end
end
if ARGV[5] ~= '0' then
  local existing = redis.call('GET', KEYS[6])
  local earlier = existing and redis.call('HMGET', ARGV[8] .. existing, 'status', 'request_digest')
  if existing and (earlier[1] or ARGV[11] == '1') then
    return {existing, earlier[1] or '', earlier[2] or ''}
  end
  redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[5])
end
local status, detail = person_status(KEYS[7], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7], ARGV[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'source', ARGV[10], 'status', status, 'received_at', ARGV[2],
  'updated_at', ARGV[2], SOURCE_COUNTED, '1', unpack(ARGV, 13 + limits))
first_event(KEYS[2], ARGV[2], status, detail)  -- no lead hash, so no events either: the list is new
move_status(KEYS[3], KEYS[1], ARGV[1], nil, status, ARGV[2], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
index_source(ARGV[10], ARGV[1], ARGV[2])
if status == 'queued' then redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1]) end
if status == 'fetching' then redis.call('ZADD', KEYS[8], ARGV[9], ARGV[1]) end
if status == 'rejected' then count_settled(KEYS[9], KEYS[10], 1) end  -- refused at intake: failed, as later
return {ARGV[1], status}
"""
)

COMPLETE_FETCH = (
    LEAD_HELPERS
    + PERSON_HELPER
    + """
-- End a lead's Graph retrieval: store its record and queue it (or `duplicate` within the person window),
-- or settle it without a record (`rejected`, `dead`, `test`). Only a lead still `fetching` is changed.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] status counts, KEYS[4] ready zset, KEYS[5] fetching zset,
-- KEYS[6] person string (last time seen | lead id), KEYS[7] failed-this-minute counter,
-- KEYS[8] failed-this-second counter
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] status, ARGV[4] event detail, ARGV[5] error ('' for none),
-- ARGV[6] person memory ttl s (0: not recorded), ARGV[7] duplicate window s (0: no check),
-- ARGV[8..] field, value pairs (record, external_id, phone, warnings; or the refused submission alone)
-- Returns the lead's new status, or '' when it was no longer `fetching` (left alone).
local old = redis.call('HGET', KEYS[1], 'status')
if old ~= 'fetching' then
  redis.call('ZREM', KEYS[5], ARGV[1])
  return ''
end
local status, detail = person_status(KEYS[6], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7], ARGV[1])
if #ARGV >= 9 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
redis.call('HSET', KEYS[1], 'status', status, 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'next_attempt_at')
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) else redis.call('HDEL', KEYS[1], 'error') end
append_event(KEYS[2], ARGV[2], status, detail)
move_status(KEYS[3], KEYS[1], ARGV[1], old, status, ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[1])
if status == 'queued' then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
elseif status == 'rejected' or status == 'dead' then
  count_settled(KEYS[7], KEYS[8], 1)
end
return status
"""
)

DEFER_FETCH = (
    EVENT_HELPER
    + """
-- Keep a lead `fetching` and set when its retrieval is tried next (a transient fault, or retrieval paused); a pause
-- its lead already waits out (the newest event says the same) adds no event.
-- KEYS[1] lead hash, KEYS[2] events list, KEYS[3] fetching zset
-- ARGV[1] lead id, ARGV[2] now, ARGV[3] next try time, ARGV[4] reason, ARGV[5] "1" to count a failed try
-- Returns 1 when deferred, 0 when the lead was no longer `fetching`.
if redis.call('HGET', KEYS[1], 'status') ~= 'fetching' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2], 'next_attempt_at', ARGV[3], 'error', ARGV[4])
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[1], 'fetch_attempts', 1) end
-- A lead waiting out a pause says so once, since when: an event per probe (or hold) would push its history out.
local last = redis.call('LINDEX', KEYS[2], 0)
local said = false
if ARGV[5] ~= '1' and last then
  local event = cjson.decode(last)
  said = event.status == 'fetching' and event.detail == ARGV[4]
end
if not said then append_event(KEYS[2], ARGV[2], 'fetching', ARGV[4]) end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""
)

RELEASE_HELD_FETCHES = """
-- Make due at once the leads held back behind one Page's retrieval pause that still wait in `fetching`, and forget
-- the rest (retrieved, or given up, since).
-- KEYS[1] the Page's held set, KEYS[2] fetching zset
-- ARGV[1] now
-- Returns how many were made due.
local released = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  released = released + redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[1], id)
end
redis.call('DEL', KEYS[1])
return released
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

RENEW_FETCH_LEASE = """
-- Take up a Meta lead's retrieval for a fetch job queued under a lease: only while the lead's score in the
-- fetching set is still that lease's deadline (compared as numbers), pushing it out by a new lease at once.
-- Of several jobs queued for one lead (one that waited past its lease, then the sweep's), one fetches.
-- KEYS[1] fetching zset
-- ARGV[1] lead id, ARGV[2] the lease deadline the job was queued under ('' for a job queued without one: it
-- takes the lead up whatever its lease), ARGV[3] the new lease's deadline
-- Returns 1 when taken up, 0 when another job took the lead up since (or it left the fetching set).
if ARGV[2] == '' then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
  return 1
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""
