"""The Lua functions shared by the scripts that change a lead's status, prepended to each one's source."""

from __future__ import annotations

from collections.abc import Iterable

from app.models import FINAL_STATUSES, RETRYABLE_BY_ID_STATUSES, RETRYABLE_STATUSES, LeadStatus
from app.store import keys


def lua_string(value: str) -> str:
    """`value` as a Lua string literal, for constants written into a script's source."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lua_set(statuses: Iterable[LeadStatus]) -> str:
    return "{" + ", ".join(f"{status.value} = true" for status in sorted(statuses)) + "}"


# Shared by every script that records a lead event: the event's shape and how many a lead keeps. A new lead's
# first event goes into an empty list (a lead's events are deleted with its hash): nothing to trim.
EVENT_HELPER = """
local function encode_event(now, status, detail)
  return cjson.encode({at = tonumber(now), status = status, detail = detail})
end
local function first_event(events_key, now, status, detail)
  redis.call('LPUSH', events_key, encode_event(now, status, detail))
end
local function append_event(events_key, now, status, detail)
  redis.call('LPUSH', events_key, encode_event(now, status, detail))
  redis.call('LTRIM', events_key, 0, 19)
end
"""

# How long the delivered/failed counters of one minute and of one second are kept: `/v1/stats` reads the last
# hour's minutes, and the seconds of the part-minute at each window's far edge (up to an hour and a minute ago).
MINUTE_COUNTER_TTL_SECONDS = 7200
SECOND_COUNTER_TTL_SECONDS = 3720

# Shared Lua helpers, prepended to the scripts that record lead events and status counts.
# `move_status` is the one way a status changes: count (and the lead's source's count, for a lead marked counted
# there), status index, and the retention sets when the new status is final (scored by that time: the purge pass
# applies the retention settings in force).
# The status index is scored by receipt time, read from the lead unless the caller passes it.
# `count_settled` adds leads delivered (or failed) now to this minute's and this second's counter.
LEAD_HELPERS = (
    f"local STATUS_INDEX = {lua_string(keys.status_index_key(''))}\n"
    f"local SOURCE_INDEX = {lua_string(keys.source_index_key(''))}\n"
    f"local SOURCES = {lua_string(keys.sources_seen_key())}\n"
    f"local SOURCE_COUNTS = {lua_string(keys.source_status_counts_key(''))}\n"
    f"local SOURCE_COUNTED = {lua_string(keys.SOURCE_COUNTED_FIELD)}\n"
    f"local RETAINED_RECORDS = {lua_string(keys.retained_records_key())}\n"
    f"local RETAINED_LEADS = {lua_string(keys.retained_leads_key())}\n"
    f"local FINAL = {_lua_set(FINAL_STATUSES)}\n"
    f"local RETRYABLE = {_lua_set(RETRYABLE_STATUSES)}\n"
    f"local RETRYABLE_BY_ID = {_lua_set(RETRYABLE_BY_ID_STATUSES)}\n"
    f"local MINUTE_COUNTER_TTL, SECOND_COUNTER_TTL = {MINUTE_COUNTER_TTL_SECONDS}, {SECOND_COUNTER_TTL_SECONDS}\n"
    + EVENT_HELPER
    + """
local function push_event(lead_key, events_suffix, now, status, detail)
  append_event(lead_key .. events_suffix, now, status, detail)
end
local function source_counts_of(lead_key)
  local lead = redis.call('HMGET', lead_key, 'source', SOURCE_COUNTED)
  return lead[1] and lead[2] and SOURCE_COUNTS .. lead[1]
end
local function move_status(counts_key, lead_key, id, old, new, now, received_at)
  local by_source = source_counts_of(lead_key)
  if old then
    redis.call('HINCRBY', counts_key, old, -1)
    if by_source then redis.call('HINCRBY', by_source, old, -1) end
    redis.call('ZREM', STATUS_INDEX .. old, id)
  end
  redis.call('HINCRBY', counts_key, new, 1)
  if by_source then redis.call('HINCRBY', by_source, new, 1) end
  redis.call('ZADD', STATUS_INDEX .. new, received_at or redis.call('HGET', lead_key, 'received_at') or now, id)
  if FINAL[new] then
    redis.call('ZADD', RETAINED_LEADS, now, id)
    redis.call('ZADD', RETAINED_RECORDS, now, id)
  end
end
local function count_settled(minute_key, second_key, n)
  redis.call('INCRBY', minute_key, n)
  redis.call('EXPIRE', minute_key, MINUTE_COUNTER_TTL)
  redis.call('INCRBY', second_key, n)
  redis.call('EXPIRE', second_key, SECOND_COUNTER_TTL)
end
local function index_source(source, id, score)
  redis.call('ZADD', SOURCE_INDEX .. source, score, id)
  redis.call('SADD', SOURCES, source)
end
"""
)

# Shared by the scripts that make a lead `queued`: the per-source duplicate window over phones.
# The person string holds "<time seen>|<lead id>": an earlier lead that careCycle never got (rejected,
# dead, or gone) does not make a new one a duplicate, so a person is not lost to a failed first try.
PERSON_HELPER = (
    f"local PERSON_LEAD = {lua_string(keys.lead_key(''))}\n"
    f"local NEVER_SENT = {_lua_set((LeadStatus.REJECTED, LeadStatus.DEAD))}\n"
    + """
local function person_status(person_key, now, status, detail, memory_ttl, window, id)
  if memory_ttl ~= '0' and status == 'queued' then
    local seen = redis.call('GET', person_key)
    if seen and window ~= '0' then
      local at, earlier = string.match(seen, '^([^|]+)|?(.*)$')
      local earlier_status = earlier ~= '' and redis.call('HGET', PERSON_LEAD .. earlier, 'status') or false
      if tonumber(now) - tonumber(at) < tonumber(window) and earlier_status and not NEVER_SENT[earlier_status] then
        return 'duplicate', 'same phone as lead ' .. earlier .. ' within the duplicate window'
      end
    end
    redis.call('SET', person_key, now .. '|' .. id, 'EX', memory_ttl)
  end
  return status, detail
end
"""
)
