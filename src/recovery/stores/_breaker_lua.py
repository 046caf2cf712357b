"""
The Lua port of `BreakerMachine` that `RedisStore` runs inside Redis.

One script serves every operation (ARGV[1] names it), so each transition is
one atomic EVALSHA. It follows `recovery.policies.breaker_core` rule for
rule; the store contract tests run the same scenarios against both. Times
are integer milliseconds from the server's TIME (or from ARGV[2] when a test
pins the clock).

KEYS: 1 state hash, 2 count-window ring (list of outcome codes),
3 time-window buckets (hash "<index>:c|f|s" -> count), 4 trial permits
(sorted set, score = lease expiry).

ARGV: 1 op, 2 now (ms, or -1 for the server clock), 3 ttl (ms), then the
settings (4-21, see `RedisStore._settings`), then the operation's own
arguments from 22 on.

Replies: {kind, state, generation, retry_ms, t_previous, t_state, t_reason,
t_retry_ms}; kind is "allow", "trial", "bypass", "reject" or "view"; retry
values are -1 for none; t_previous is "" when nothing changed.
"""

from __future__ import annotations

__all__ = ["BREAKER_SCRIPT"]

BREAKER_SCRIPT = r"""
local S, RING, BUCKETS, PROBES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
local wkind = tonumber(ARGV[5])
local wsize = tonumber(ARGV[6])
local wbuckets = tonumber(ARGV[7])
local wspan = tonumber(ARGV[8])
local frate = tonumber(ARGV[9])
local min_calls = tonumber(ARGV[10])
local slow_ms = tonumber(ARGV[11])
local slow_rate = tonumber(ARGV[12])
local a_factor = tonumber(ARGV[13])
local a_floor = tonumber(ARGV[14])
local a_ceiling = tonumber(ARGV[15])
local a_smooth = tonumber(ARGV[16])
local reset_ms = tonumber(ARGV[17])
local growth = tonumber(ARGV[18])
local cap_ms = tonumber(ARGV[19])
local ho_calls = tonumber(ARGV[20])
local lease_ms = tonumber(ARGV[21])
local TOLERANCE = 1e-9

local raw = redis.call('HGETALL', S)
local st = {}
for i = 1, #raw, 2 do st[raw[i]] = raw[i + 1] end
local exists = #raw > 0

local function num(field, default)
  local v = st[field]
  if v == nil or v == '' then return default end
  return tonumber(v)
end

local state = st['state'] or 'closed'
local gen = num('gen', 0)
local since = num('since', now)
local open_until = num('open_until', 0)
local trips = num('trips', 0)
local consec = num('consec', 0)
local probe_ok = num('probe_ok', 0)
local baseline = num('baseline', nil)
local s_calls = num('s_calls', 0)
local s_fail = num('s_fail', 0)
local s_start = num('s_start', now)
local n_ok, n_fail, n_slow = num('n_ok', 0), num('n_fail', 0), num('n_slow', 0)
local n_ign, n_rej, n_open = num('n_ign', 0), num('n_rej', 0), num('n_open', 0)
local reason = st['reason'] or 'created'
local wc, wf, ws = num('wc', 0), num('wf', 0), num('ws', 0)
local dirty = false
local transition = nil

local function fmt(x) return string.format('%.3f', x) end

local function open_duration(n)
  local steps = n - 1
  if growth == 1 or steps <= 0 then return reset_ms end
  if steps >= math.log(cap_ms / reset_ms) / math.log(growth) then return cap_ms end
  return math.min(cap_ms, reset_ms * growth ^ steps)
end

local function retry_after()
  if state == 'open' then return math.max(0, open_until - now) end
  return -1
end

local function clear_window()
  redis.call('DEL', RING, BUCKETS)
  wc, wf, ws = 0, 0, 0
end

local function move(to, why)
  local previous = state
  state = to
  gen = gen + 1
  since = now
  reason = why
  consec = 0
  redis.call('DEL', PROBES)
  probe_ok = 0
  clear_window()
  s_calls, s_fail, s_start = 0, 0, now
  if to == 'closed' then trips = 0 end
  dirty = true
  transition = {previous, to, why, retry_after()}
end

local function trip(why)
  trips = trips + 1
  n_open = n_open + 1
  open_until = now + open_duration(trips)
  move('open', why)
end

-- Time-window buckets: index = floor(now / width); keep the last wbuckets.
local function bucket_totals(add_code)
  local current = math.floor(now / wsize)
  local oldest = current - wbuckets + 1
  local fields = redis.call('HGETALL', BUCKETS)
  local calls, fails, slows = 0, 0, 0
  for i = 1, #fields, 2 do
    local name = fields[i]
    local index = tonumber(string.sub(name, 1, -3))
    if index < oldest then
      if add_code ~= nil then redis.call('HDEL', BUCKETS, name) end
    else
      local kind = string.sub(name, -1)
      local count = tonumber(fields[i + 1])
      if kind == 'c' then calls = calls + count
      elseif kind == 'f' then fails = fails + count
      else slows = slows + count end
    end
  end
  if add_code ~= nil then
    redis.call('HINCRBY', BUCKETS, current .. ':c', 1)
    calls = calls + 1
    if add_code % 2 == 1 then
      redis.call('HINCRBY', BUCKETS, current .. ':f', 1)
      fails = fails + 1
    end
    if add_code >= 2 then
      redis.call('HINCRBY', BUCKETS, current .. ':s', 1)
      slows = slows + 1
    end
  end
  return calls, fails, slows
end

local function window_add(code)
  if wkind == 1 then
    redis.call('RPUSH', RING, code)
    if wc == wsize then
      local old = tonumber(redis.call('LPOP', RING))
      wf = wf - (old % 2)
      ws = ws - math.floor(old / 2)
    else
      wc = wc + 1
    end
    wf = wf + (code % 2)
    ws = ws + math.floor(code / 2)
    return wc, wf, ws
  end
  return bucket_totals(code)
end

local function window_totals()
  if wkind == 1 then return wc, wf, ws end
  if wkind == 2 then return bucket_totals(nil) end
  return 0, 0, 0
end

local function failure_rate_threshold()
  if a_factor >= 0 then
    if baseline == nil then return a_ceiling end
    return math.min(a_ceiling, math.max(a_floor, a_factor * baseline))
  end
  if frate >= 0 then return frate end
  return nil
end

local function trip_reason(calls, fails, slows)
  if threshold > 0 and consec >= threshold then
    if consec == 1 then return '1 consecutive failure' end
    return consec .. ' consecutive failures'
  end
  if wkind == 0 or calls < min_calls then return nil end
  local rate = failure_rate_threshold()
  if rate ~= nil and fails >= rate * calls - TOLERANCE then
    return 'failure rate ' .. fmt(fails / calls) .. ' >= ' .. fmt(rate) ..
      ' over ' .. calls .. ' calls'
  end
  if slow_rate >= 0 and slows >= slow_rate * calls - TOLERANCE then
    return 'slow-call rate ' .. fmt(slows / calls) .. ' >= ' .. fmt(slow_rate) ..
      ' over ' .. calls .. ' calls'
  end
  return nil
end

local function end_sample()
  if s_calls >= min_calls then
    local rate = s_fail / s_calls
    if baseline == nil then baseline = rate
    else baseline = baseline + a_smooth * (rate - baseline) end
  end
  s_calls, s_fail = 0, 0
end

local function sample(failed)
  if a_factor < 0 or wkind == 0 then return end
  if wkind == 2 and now - s_start >= wspan then
    end_sample()
    s_start = now
  end
  s_calls = s_calls + 1
  if failed then s_fail = s_fail + 1 end
  if wkind == 1 and s_calls >= wsize then end_sample() end
end

local function reply(kind, retry)
  local r = {kind, state, gen, retry}
  if transition == nil then
    r[5], r[6], r[7], r[8] = '', '', '', -1
  else
    r[5], r[6], r[7], r[8] = transition[1], transition[2], transition[3], transition[4]
  end
  return r
end

local function acquire(permit)
  if state == 'closed' then return 'allow', -1 end
  if state == 'disabled' then return 'bypass', -1 end
  if state == 'forced_open' then
    n_rej = n_rej + 1
    dirty = true
    return 'reject', -1
  end
  if state == 'open' then
    if now < open_until then
      n_rej = n_rej + 1
      dirty = true
      return 'reject', open_until - now
    end
    move('half_open', 'open duration elapsed')
  end
  redis.call('ZREMRANGEBYSCORE', PROBES, '-inf', now)
  if redis.call('ZCARD', PROBES) < ho_calls then
    redis.call('ZADD', PROBES, now + lease_ms, permit)
    dirty = true
    return 'trial', -1
  end
  n_rej = n_rej + 1
  dirty = true
  local first = redis.call('ZRANGE', PROBES, 0, 0, 'WITHSCORES')
  local wait = math.min(tonumber(first[2]) - now, reset_ms)
  return 'reject', math.max(0, wait)
end

local function record(generation, permit, outcome, duration)
  local slow = slow_ms >= 0 and duration >= slow_ms
  dirty = true
  if outcome == 'success' then n_ok = n_ok + 1
  elseif outcome == 'failure' then n_fail = n_fail + 1
  elseif outcome == 'ignored' then n_ign = n_ign + 1; slow = false
  else slow = false end
  if outcome == 'success' or outcome == 'failure' then
    if slow then n_slow = n_slow + 1 end
  end

  if permit ~= '' then
    local held = redis.call('ZREM', PROBES, permit)
    if held == 0 or generation ~= gen then return end
    if outcome == 'ignored' or outcome == 'cancelled' then return end
    if outcome == 'failure' then trip('a trial call failed'); return end
    if slow and slow_rate >= 0 then trip('a trial call was slow'); return end
    probe_ok = probe_ok + 1
    if probe_ok >= ho_calls then move('closed', 'trial calls succeeded') end
    return
  end

  if generation ~= gen or state ~= 'closed' then return end
  if outcome == 'ignored' or outcome == 'cancelled' then return end
  local failed = outcome == 'failure'
  if failed then consec = consec + 1 else consec = 0 end
  local code = 0
  if failed then code = code + 1 end
  if slow then code = code + 2 end
  local calls, fails, slows = 0, 0, 0
  if wkind > 0 then calls, fails, slows = window_add(code) end
  local why = trip_reason(calls, fails, slows)
  if why ~= nil then trip(why); return end
  sample(failed)
end

local kind, retry = 'view', -1
if op == 'acquire' then
  local rejected = tonumber(ARGV[23])
  if rejected > 0 then n_rej = n_rej + rejected; dirty = true end
  kind, retry = acquire(ARGV[22])
elseif op == 'record' then
  local rejected = tonumber(ARGV[26])
  if rejected > 0 then n_rej = n_rej + rejected end
  record(tonumber(ARGV[22]), ARGV[23], ARGV[24], tonumber(ARGV[25]))
  retry = retry_after()
elseif op == 'force' then
  local to = ARGV[22]
  local why = 'reset by an operator'
  if to == 'forced_open' then why = 'forced open by an operator'
  elseif to == 'disabled' then why = 'disabled by an operator' end
  move(to, why)
  trips = 0
elseif op == 'reset_metrics' then
  n_ok, n_fail, n_slow, n_ign, n_rej, n_open = 0, 0, 0, 0, 0, 0
  dirty = true
elseif op == 'metrics' then
  if not exists then return {} end
  local calls, fails, slows = window_totals()
  local b = ''
  if baseline ~= nil then b = tostring(baseline) end
  return {state, gen, tostring(since), tostring(open_until), n_ok, n_fail, n_slow,
    n_ign, n_rej, n_open, consec, calls, fails, slows, b, tostring(now)}
end

if dirty then
  local b = ''
  if baseline ~= nil then b = string.format('%.17g', baseline) end
  redis.call('HSET', S, 'state', state, 'gen', gen, 'since', since,
    'open_until', open_until, 'trips', trips, 'consec', consec,
    'probe_ok', probe_ok, 'baseline', b, 's_calls', s_calls, 's_fail', s_fail,
    's_start', s_start, 'n_ok', n_ok, 'n_fail', n_fail, 'n_slow', n_slow,
    'n_ign', n_ign, 'n_rej', n_rej, 'n_open', n_open, 'reason', reason,
    'wc', wc, 'wf', wf, 'ws', ws)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
end
return reply(kind, retry)
"""
