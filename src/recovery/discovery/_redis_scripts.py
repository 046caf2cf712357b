"""
The Lua scripts of the Redis registry: one atomic script per transition.

Every script reads the time from Redis (`TIME`), never from a client, so
hosts with skewed clocks agree on heartbeat expiry and ejection ends. Times
are integer milliseconds (Lua numbers become integers in replies). Keys of
one service share a hash tag, so a service lives in one Redis Cluster slot.

Key layout, for KEYS in this order::

    1 inst     hash        address -> JSON descriptor
    2 ttl      sorted set  address -> heartbeat expiry (ms; +inf: never)
    3 status   hash        address -> "passing" | "critical"
    4 eject    sorted set  address -> ejected until (ms)
    5 ejcount  hash        address -> ejections counted towards the next
    6 rev      string      revision, incremented on every shared change
"""

from __future__ import annotations

__all__ = [
    "EJECT",
    "HEARTBEAT",
    "POLL",
    "REGISTER",
    "RESOLVE",
    "SET_STATUS",
    "WITHDRAW",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_BUMP = """
local function bump()
  local rev = redis.call('INCR', KEYS[6])
  redis.call('PUBLISH', ARGV[1], rev)
  return rev
end
"""

# ARGV: channel, address, descriptor, ttl_ms (-1: never expires), status
REGISTER = (
    _NOW
    + _BUMP
    + """
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl < 0 then
  redis.call('ZADD', KEYS[2], 'inf', ARGV[2])
else
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
return bump()
"""
)

# ARGV: channel, address, ttl_ms. Returns -1 when the address was reaped
# (the caller registers again), else the revision.
HEARTBEAT = (
    _NOW
    + _BUMP
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
  return -1
end
local raw = redis.call('ZSCORE', KEYS[2], ARGV[2])
local old = 0
if raw == 'inf' then old = now elseif raw then old = tonumber(raw) end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
if old < now then
  return bump()
end
return tonumber(redis.call('GET', KEYS[6]) or '0')
"""
)

# ARGV: channel, address
WITHDRAW = (
    _BUMP
    + """
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
return bump()
"""
)

# ARGV: channel, address, status. Bumps the revision only on a change.
SET_STATUS = (
    _BUMP
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
  return -1
end
if redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return bump()
"""
)

# ARGV: channel, grace_ms. Reaps up to 100 addresses whose heartbeat expired
# more than grace_ms ago; returns {revision, expired count, reaped...}.
POLL = (
    _NOW
    + _BUMP
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]),
                        'LIMIT', 0, 100)
for _, id in ipairs(dead) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
end
if #dead > 0 then
  bump()
end
local expired = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. now)
local reply = {tonumber(redis.call('GET', KEYS[6]) or '0'), expired}
for _, id in ipairs(dead) do
  table.insert(reply, id)
end
return reply
"""
)

# Returns {revision, {address, descriptor, status, ms to expiry (0: expired,
# -1: never),
# ms of ejection left, ejections}...} as one flat list after the revision.
RESOLVE = (
    _NOW
    + """
local reply = {tonumber(redis.call('GET', KEYS[6]) or '0')}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id = all[i]
  local expiry = redis.call('ZSCORE', KEYS[2], id)
  local left = -1
  if expiry and expiry ~= 'inf' then
    left = math.max(0, tonumber(expiry) - now)
  end
  local ejected = tonumber(redis.call('ZSCORE', KEYS[4], id) or '0') - now
  if ejected < 0 then ejected = 0 end
  table.insert(reply, id)
  table.insert(reply, all[i + 1])
  table.insert(reply, redis.call('HGET', KEYS[3], id) or 'passing')
  table.insert(reply, left)
  table.insert(reply, ejected)
  table.insert(reply, tonumber(redis.call('HGET', KEYS[5], id) or '0'))
end
return reply
"""
)

# ARGV: channel, address, base_ms, max_ms, max_percent.
# Returns {ms, ejections} when ejected, {-1, ejected, live} when the cap
# refuses, {-2} for an unknown address, {-3, ms left} when already ejected.
EJECT = (
    _NOW
    + _BUMP
    + """
local id = ARGV[2]
if redis.call('HEXISTS', KEYS[1], id) == 0 then
  return {-2}
end
local until_ms = tonumber(redis.call('ZSCORE', KEYS[4], id) or '0')
if until_ms > now then
  return {-3, until_ms - now}
end
local live = redis.call('ZCOUNT', KEYS[2], now, '+inf')
local ejected = 0
for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. now, '+inf')) do
  local expiry = redis.call('ZSCORE', KEYS[2], other)
  if expiry and (expiry == 'inf' or tonumber(expiry) >= now) then
    ejected = ejected + 1
  end
end
-- The cap is checked after this ejection, never before.
if (ejected + 1) * 100 > tonumber(ARGV[5]) * live then
  return {-1, ejected, live}
end
local base = tonumber(ARGV[3])
local count = tonumber(redis.call('HGET', KEYS[5], id) or '0')
if count > 0 and until_ms > 0 and now > until_ms then
  count = math.max(0, count - math.floor((now - until_ms) / base))
end
count = count + 1
local duration = math.min(base * count, tonumber(ARGV[4]))
redis.call('ZADD', KEYS[4], now + duration, id)
redis.call('HSET', KEYS[5], id, count)
bump()
return {duration, count}
"""
)
