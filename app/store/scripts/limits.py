"""Scripts that hold back requests: the shared careCycle budget, pauses (delivery's, Meta retrieval's) and their probes,
and the form throttle."""

from __future__ import annotations

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

# Shared by the pause scripts: a pause hash keeps its `cause` (what set its next probe time) and shows as its `reason`
# the cause with what was met since, when that did not replace it. A pause written before causes were kept has its
# reason alone: that reason becomes its cause, so that each note replaces the last instead of being added to it.
NOTE_HELPER = """
local function noted(key, note)
  local cause = redis.call('HGET', key, 'cause')
  if not cause then
    cause = redis.call('HGET', key, 'reason') or ''
    redis.call('HSET', key, 'cause', cause)
  end
  local shown = cause .. '; ' .. note
  redis.call('HSET', key, 'reason', shown)
  return shown
end
"""

PAUSE = (
    NOTE_HELPER
    + """
-- Pause (or keep paused) for a reason until a next probe time, never bringing a later probe time nearer: a failure
-- met while paused (a call in flight as a rate limit paused retrieval until Graph's estimate) is noted beside the cause
-- of the later probe time instead of replacing it. The start time is kept.
-- KEYS[1] pause hash; KEYS[2] (optional) a listing hash (id -> the reason shown), kept in step under ARGV[5]
-- ARGV[1] now, ARGV[2] reason, ARGV[3] next probe time, ARGV[4] the note shown when a later probe time is kept
-- Returns {1 when this started the pause else 0, the reason shown, the next probe time}.
local started = redis.call('HSETNX', KEYS[1], 'since', ARGV[1])
local next_probe = redis.call('HGET', KEYS[1], 'next_probe_at')
local shown
if next_probe and tonumber(next_probe) > tonumber(ARGV[3]) then
  shown = noted(KEYS[1], ARGV[4])
else
  next_probe = ARGV[3]
  shown = ARGV[2]
  redis.call('HSET', KEYS[1], 'cause', ARGV[2], 'reason', ARGV[2], 'next_probe_at', ARGV[3])
end
if KEYS[2] then redis.call('HSET', KEYS[2], ARGV[5], shown) end
return {started, shown, next_probe}
"""
)

NOTE_PAUSE = (
    NOTE_HELPER
    + """
-- Show beside a pause's cause what was met since (its probe failing otherwise), its probe time unmoved; no pause, no
-- note.
-- KEYS[1] pause hash
-- ARGV[1] the note
-- Returns the reason shown, or false when there is no pause.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return noted(KEYS[1], ARGV[1])
"""
)

TAKE_FETCH_PROBES = """
-- Let a Meta lead through as the probe of every retrieval pause it waits behind, of all of them at once or of none:
-- a lead held for its Page spends no probe of every Page's pause, nor one waiting for every Page its Page's probe.
-- KEYS[1] every Page's retrieval pause hash, KEYS[2] (only when its Page is paused alone) the lead's Page's
-- ARGV[1] now, ARGV[2] the next probe time of the pauses this caller probes
-- Returns 0 when the lead may be tried (the next probe of each pause there moved), 2 when its Page's pause holds it,
-- 1 when every Page's pause does. A pause that is not there holds nothing.
local function waits(key)
  local next_probe = redis.call('HGET', key, 'next_probe_at')
  return next_probe ~= false and tonumber(next_probe) > tonumber(ARGV[1])
end
if KEYS[2] and waits(KEYS[2]) then return 2 end
if waits(KEYS[1]) then return 1 end
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'next_probe_at', ARGV[2]) end
end
return 0
"""

FORGET_LAPSED_PAGES = """
-- Forget the Meta Pages whose retrieval pause lapsed (no lead of theirs probed it for a while).
-- KEYS[1] paused pages hash (page id -> reason), KEYS[2] their lapse times (zset)
-- ARGV[1] now
-- Returns how many were forgotten.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
for _, page in ipairs(lapsed) do
  redis.call('HDEL', KEYS[1], page)
  redis.call('ZREM', KEYS[2], page)
end
return #lapsed
"""

# Shared by the form throttle and the admission script: fixed-window counters a request must pass.
WINDOW_HELPER = """
-- Count one request in counters keys[first..#keys], unless one of them is already full; limits[at..]
-- are their limits, in order. Returns 0 when counted everywhere, else the 1-based position of the first
-- full counter (nothing is counted then, so a refused request spends no budget).
local function hit_windows(keys, first, window, limits, at)
  if first > #keys then return 0 end
  local counts = redis.call('MGET', unpack(keys, first))  -- one command for every counter's count
  for i = 1, #counts do
    if tonumber(counts[i] or '0') >= tonumber(limits[at + i - 1]) then return i end
  end
  for i = first, #keys do
    if redis.call('INCR', keys[i]) == 1 then redis.call('EXPIRE', keys[i], window) end
  end
  return 0
end
"""

HIT_WINDOWS = (
    WINDOW_HELPER
    + """
-- Count one request in each of several fixed-window counters, unless one of them is already full.
-- KEYS[1..n] window counters (one per limit)
-- ARGV[1] window length in seconds (the counters' ttl), ARGV[2..n+1] the limit of each counter, in KEYS order
-- Returns 0 when the request was counted everywhere, else the 1-based index of the first full counter.
return hit_windows(KEYS, 1, ARGV[1], ARGV, 2)
"""
)
