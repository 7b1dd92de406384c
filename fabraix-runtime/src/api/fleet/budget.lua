--[[
budget.lua: one API key's rate budget, shared by every process that uses the key with
one Redis. One call per acquisition, and one per outcome the budget learns from; a script
runs alone, so each call is atomic, and it reads Redis's clock (TIME), so processes whose
clocks disagree still agree on the budget. The keys and their expiries: keys.rs.
Needs Redis >= 5 (a script that reads TIME and then writes is replicated by its effects).

KEYS, all of one API key under one hash tag:
  1, 2   budget:pause:agent,   budget:pause:events
  3, 4   budget:probe:agent,   budget:probe:events
  5, 6   budget:probing:agent, budget:probing:events
  7      budget:pace
  8      budget:sent
  9..    budget:window:<span ms>, one per window, in the order of the window arguments

ARGV:
  1      mode: "acquire", "throttled" or "probe_ok"
  2      lane: "agent" or "events"
  3      probe TTL, ms: how long a probe's answer is awaited before the lane probes again
  4, 5   the pace's beta (0.7) and C (0.4), 6 the lowest pace (0.1 requests/s)
  acquire:    7.. two per window: its span in ms, its requests (the windows of KEYS 9..)
  throttled:  7 the pause, ms (the 429's Retry-After); 8 "1" if the request was a probe

Returns {code, value}:
  acquire:    {0, 0} granted; {0, 1} granted as the lane's probe;
              {1, us} the lane is paused; {2, us} the lane's probe is out;
              {3, us} a window is full for the lane; {4, us} the pace spaces grants;
              us: microseconds to wait before asking again (at least 1).
  throttled, probe_ok: {0, 0}.

The rules:
  - Windows: at most N grants in any span S, kept with a margin, S' = S + S/50 + 5 ms.
    The agent lane may use all N; the events lane N - ceil(N/5) (N >= 2), so a fifth of
    every window stays free for agent calls fleet-wide. And as in one process, events wait
    while an agent call waits for a window anywhere in the fleet: a refused agent call
    marks the time it will be back (budget:sent's agent_wait field), and events are
    refused until then.
  - A 429 pauses its lane until its Retry-After. The other lane, unless paused, probes:
    its next acquisition is granted as a probe and the rest of it waits until the probe's
    answer (probe_ok clears it; a 429 pauses that lane too). A lane whose own pause ends
    probes the same way. A probe unanswered within the probe TTL is forgotten: the next
    acquisition probes again.
  - Pace: a 429 met by the probe after the lane's own pause (the limit outlasts
    Retry-After) sets wmax to the fleet's send rate (or the current pace, if lower) at
    time T. The pace at t is C*(t-T-K)^3 + wmax, K = cbrt(wmax*(1-beta)/C): beta*wmax at
    T, wmax again K seconds later, never below the lowest pace. Grants are 1/pace apart
    (events 1/(0.8*pace)). The pace goes 60 s after the last 429 once it is past 2*wmax.
]]

if redis.replicate_commands then
  redis.replicate_commands()
end

local PROBE_RECHECK_US = 50000
local EVENTS_PACE_SHARE = 0.8
local MEASURE_S = 10
local SENT_TTL_MS = 15000
local PACE_KEEP_MS = 60000

local mode, lane = ARGV[1], ARGV[2]
local me = (lane == 'agent') and 0 or 1
local other = 1 - me
local probe_ttl_ms = tonumber(ARGV[3])
local beta, scale, min_rate = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function pause_key(l) return KEYS[1 + l] end
local function probe_key(l) return KEYS[3 + l] end
local function probing_key(l) return KEYS[5 + l] end
local PACE, SENT = KEYS[7], KEYS[8]

local clock = redis.call('TIME')
local second = tonumber(clock[1])
local now = second * 1000000 + tonumber(clock[2])

-- Microseconds as exact digits (tostring keeps only 14).
local function us(x) return string.format('%d', x) end

-- The pace now, in requests per second, or nil when there is none.
local function pace_now()
  local stored = redis.call('HMGET', PACE, 'wmax', 't')
  if not stored[1] or not stored[2] then return nil end
  local wmax, since = tonumber(stored[1]), tonumber(stored[2])
  local k = (wmax * (1 - beta) / scale) ^ (1 / 3)
  local d = (now - since) / 1000000 - k
  return math.max(min_rate, scale * d * d * d + wmax)
end

-- The fleet's send rate over the last MEASURE_S seconds, over at least one second.
local function measured_rate()
  local fields = redis.call('HGETALL', SENT)
  local count, first = 0, nil
  for i = 1, #fields, 2 do
    local s = tonumber(fields[i])
    if s and s > second - MEASURE_S then
      count = count + tonumber(fields[i + 1])
      if not first or s < first then first = s end
    end
  end
  if not first then return min_rate end
  local span = math.max(1, now / 1000000 - first)
  return math.max(min_rate, count / span)
end

local function window_span_us(span_ms)
  return math.ceil((span_ms + span_ms / 50 + 5) * 1000)
end

local function acquire()
  local pause_end = redis.call('GET', pause_key(me))
  if pause_end then
    return {1, math.max(1, math.ceil(tonumber(pause_end) - now))}
  end
  local probe = 0
  if redis.call('EXISTS', probe_key(me)) == 1 then
    local out = redis.call('PTTL', probing_key(me))
    if out > 0 then
      return {2, math.min(PROBE_RECHECK_US, out * 1000)}
    end
    probe = 1
  end

  -- Events go after every agent call the fleet keeps waiting for a window.
  if lane == 'events' then
    local agents_until = tonumber(redis.call('HGET', SENT, 'agent_wait') or '0')
    if agents_until > now then
      return {3, math.max(1, math.ceil(agents_until - now))}
    end
  end

  local wait, why = 0, 0
  local windows = (#ARGV - 6) / 2
  for i = 1, windows do
    local key = KEYS[8 + i]
    local span = window_span_us(tonumber(ARGV[5 + 2 * i]))
    local n = tonumber(ARGV[6 + 2 * i])
    local limit = n
    if lane == 'events' and n >= 2 then
      limit = n - math.ceil(n / 5)
    end
    -- A grant counts while it is younger than the span.
    redis.call('ZREMRANGEBYSCORE', key, '-inf', us(now - span))
    local count = redis.call('ZCARD', key)
    if count >= limit then
      -- Room for one more once all but limit - 1 of them have left.
      local leaving = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
      local w = math.max(1, math.ceil(tonumber(leaving[2]) + span - now))
      if w > wait then wait, why = w, 3 end
    end
  end

  local pace = pace_now()
  if pace then
    local last = redis.call('HGET', SENT, 'last')
    if last then
      local interval = 1000000 / pace
      if lane == 'events' then interval = interval / EVENTS_PACE_SHARE end
      local w = math.ceil(tonumber(last) + interval - now)
      if w > wait then wait, why = w, 4 end
    end
  end
  if wait > 0 then
    if lane == 'agent' and why == 3 then
      -- Until this call is back (its wait, its jitter and a round trip), events wait.
      local agents_until = now + math.ceil(wait * 1.1) + 10000
      if agents_until > tonumber(redis.call('HGET', SENT, 'agent_wait') or '0') then
        redis.call('HSET', SENT, 'agent_wait', us(agents_until))
        redis.call('PEXPIRE', SENT, SENT_TTL_MS)
      end
    end
    return {why, wait}
  end

  local member = us(now)
  for i = 1, windows do
    local key = KEYS[8 + i]
    local span_ms = tonumber(ARGV[5 + 2 * i])
    -- Members are unique even if the clock repeats itself (or steps back).
    local m, n = member, 0
    while redis.call('ZADD', key, 'NX', member, m) == 0 do
      n = n + 1
      m = member .. '.' .. n
    end
    redis.call('PEXPIRE', key, math.ceil(window_span_us(span_ms) / 1000))
  end
  if redis.call('HINCRBY', SENT, clock[1], 1) == 1 then
    -- A new second: forget the seconds no measurement reads any more.
    for _, field in ipairs(redis.call('HKEYS', SENT)) do
      local s = tonumber(field)
      if s and s <= second - MEASURE_S then
        redis.call('HDEL', SENT, field)
      end
    end
  end
  redis.call('HSET', SENT, 'last', member)
  redis.call('PEXPIRE', SENT, SENT_TTL_MS)
  if probe == 1 then
    redis.call('SET', probing_key(me), '1', 'PX', probe_ttl_ms)
    if redis.call('PTTL', probe_key(me)) < 2 * probe_ttl_ms then
      redis.call('PEXPIRE', probe_key(me), 2 * probe_ttl_ms)
    end
  end
  return {0, probe}
end

local function throttled()
  local wait_ms = math.max(1, math.ceil(tonumber(ARGV[7])))
  local was_probe = ARGV[8] == '1'
  local kind = redis.call('GET', probe_key(me))

  local pause_end = now + wait_ms * 1000
  local current = redis.call('GET', pause_key(me))
  if current and tonumber(current) >= pause_end then
    pause_end = tonumber(current)
  else
    redis.call('SET', pause_key(me), us(pause_end), 'PX', wait_ms)
  end
  local until_probed = math.ceil((pause_end - now) / 1000) + probe_ttl_ms
  redis.call('SET', probe_key(me), 'self', 'PX', until_probed)
  redis.call('DEL', probing_key(me))
  if redis.call('EXISTS', pause_key(other)) == 0 then
    if not redis.call('SET', probe_key(other), 'other', 'NX', 'PX', until_probed) then
      if redis.call('PTTL', probe_key(other)) < until_probed then
        redis.call('PEXPIRE', probe_key(other), until_probed)
      end
    end
  end

  local pace = pace_now()
  if was_probe and kind == 'self' then
    local wmax = measured_rate()
    if pace then wmax = math.min(pace, wmax) end
    wmax = math.max(min_rate, wmax)
    local k = (wmax * (1 - beta) / scale) ^ (1 / 3)
    local to_double = k + (wmax / scale) ^ (1 / 3)
    redis.call('HSET', PACE, 'wmax', tostring(wmax), 't', us(now))
    redis.call('PEXPIRE', PACE, math.max(PACE_KEEP_MS, math.ceil(to_double * 1000)))
  elseif pace and redis.call('PTTL', PACE) < PACE_KEEP_MS then
    redis.call('PEXPIRE', PACE, PACE_KEEP_MS)
  end
  return {0, 0}
end

local function probe_ok()
  -- A lane paused again since its probe went out probes again after the new pause.
  if redis.call('EXISTS', pause_key(me)) == 0 then
    redis.call('DEL', probe_key(me), probing_key(me))
  end
  return {0, 0}
end

if mode == 'acquire' then
  return acquire()
elseif mode == 'throttled' then
  return throttled()
elseif mode == 'probe_ok' then
  return probe_ok()
end
return redis.error_reply('budget.lua: unknown mode')
