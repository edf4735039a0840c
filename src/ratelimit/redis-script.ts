// The one Lua script behind every Redis check: refill + take, atomically, on Redis' clock.
// Same algorithm as takeFromBucket (bucket.ts). The clock is Redis `TIME` in milliseconds, never
// the gateway's, so replicas with skewed clocks agree. Idle buckets expire once they would be
// full again (plus a second), so Redis holds only active clients.
//
// KEYS[1] bucket key; ARGV: capacity, refill per ms, cost, max wait ms.
// Returns { allowed (0/1), remaining (string: fractional), waitMs, fullInMs }.

import { createHash } from 'node:crypto';

export const TAKE_SCRIPT = `
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local maxWait = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
if tokens > capacity then tokens = capacity end
local allowed = 1
local wait = 0
if cost <= 0 then
  tokens = math.min(capacity, tokens - cost)
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) / rate - 0.000001)
  if wait <= maxWait then tokens = tokens - cost else allowed = 0 end
end
local full = math.max(0, math.ceil((capacity - tokens) / rate - 0.000001))
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'at', at)
redis.call('PEXPIRE', key, full + 1000)
return { allowed, string.format('%.17g', tokens), wait, full }
`;

export const TAKE_SCRIPT_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex');
