// The one Lua script behind every Redis check: refill + take, atomically, on Redis' clock, for
// a batch of checks at once (every check of one event-loop turn that lives on one hash slot).
// Same algorithm as takeFromBucket (bucket.ts), applied in order; a bucket named twice in a batch
// is read once and written once. The clock is Redis `TIME` in milliseconds, never the gateway's,
// so replicas with skewed clocks agree. Idle buckets expire once they would be full again (plus a
// second), so Redis holds only active clients.
//
// KEYS: the distinct bucket keys of the batch (one slot on a cluster).
// ARGV[1]: space-separated numbers: n, then per check: key index (1-based), capacity, refill per
// ms, cost, max wait ms, window ms (0 = a refilling bucket; > 0 = a fixed window ending in that
// many ms, for quotas: no refill). One argument rather than 1 + 6n: far less for the client to encode.
// Returns 4 values per check: allowed (0/1), remaining (string: fractional), waitMs, fullInMs.

import { createHash } from 'node:crypto';

export const TAKE_SCRIPT = `
local argv = {}
for word in string.gmatch(ARGV[1], '%S+') do argv[#argv + 1] = word end
local n = tonumber(argv[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local buckets = {}
local out = {}
for i = 0, n - 1 do
  local base = 2 + i * 6
  local k = tonumber(argv[base])
  local capacity = tonumber(argv[base + 1])
  local rate = tonumber(argv[base + 2])
  local cost = tonumber(argv[base + 3])
  local maxWait = tonumber(argv[base + 4])
  local window = tonumber(argv[base + 5])
  local b = buckets[k]
  if b == nil then
    local state = redis.call('HMGET', KEYS[k], 'tokens', 'at')
    local tokens = tonumber(state[1])
    local at = tonumber(state[2])
    if tokens == nil or at == nil then
      tokens = capacity
      at = now
    end
    b = { tokens = tokens, at = at, full = 0 }
    buckets[k] = b
  end
  local tokens = b.tokens
  if now > b.at then
    tokens = math.min(capacity, tokens + (now - b.at) * rate)
    b.at = now
  end
  if tokens > capacity then tokens = capacity end
  local allowed = 1
  local wait = 0
  if cost <= 0 then
    tokens = math.min(capacity, tokens - cost)
  elseif tokens >= cost then
    tokens = tokens - cost
  else
    if window > 0 then wait = window else wait = math.ceil((cost - tokens) / rate - 0.000001) end
    if wait <= maxWait then tokens = tokens - cost else allowed = 0 end
  end
  local full = 0
  if window > 0 then
    if tokens < capacity then full = window end
    b.window = window
  else
    full = math.max(0, math.ceil((capacity - tokens) / rate - 0.000001))
  end
  b.tokens = tokens
  b.full = full
  out[#out + 1] = allowed
  out[#out + 1] = string.format('%.17g', tokens)
  out[#out + 1] = wait
  out[#out + 1] = full
end
for k, b in pairs(buckets) do
  redis.call('HSET', KEYS[k], 'tokens', string.format('%.17g', b.tokens), 'at', b.at)
  if b.window then
    redis.call('PEXPIRE', KEYS[k], b.window + 1000)
  else
    redis.call('PEXPIRE', KEYS[k], b.full + 1000)
  end
end
return out
`;

export const TAKE_SCRIPT_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex');
