// Token-bucket arithmetic shared by every store. The Redis Lua script (redis-script.ts) is the
// same algorithm line for line, so the memory and Redis stores decide identically.
//
// A bucket holds up to `capacity` tokens and gains `refillPerMs` tokens per millisecond. A
// request takes `cost` tokens. When there are too few, the request is refused — unless the
// tokens will be there within `maxWaitMs` (queue mode): then they are reserved now (the bucket
// goes below zero) and the caller waits `waitMs` before going on. Reservations keep queued
// requests in order without any polling, across processes.

export interface BucketSpec {
  readonly capacity: number;
  readonly refillPerMs: number;
}

export interface TakeRequest extends BucketSpec {
  /** Store key of the bucket (policy + client identity). */
  readonly key: string;
  /** Tokens to take; a negative cost gives tokens back (refund), never above capacity. */
  readonly cost: number;
  /** 0 = reject at once when tokens are short. */
  readonly maxWaitMs: number;
  /**
   * A fixed window instead of a refilling bucket (quotas): with `refillPerMs` 0, the bucket holds
   * `capacity` for the window, which ends in `windowMs` (its key names the window, so the next
   * one starts full). Refused requests wait until then. 0 or absent: a refilling bucket.
   */
  readonly windowMs?: number;
}

export interface TakeResult {
  readonly allowed: boolean;
  /** Tokens left after this request (negative while requests are queued). */
  readonly remaining: number;
  /** allowed: how long to hold the request (0 = go now). refused: when `cost` tokens will be there. */
  readonly waitMs: number;
  /** Milliseconds until the bucket is full again. */
  readonly fullInMs: number;
}

export interface BucketState {
  tokens: number;
  /** Store clock (ms) of the last refill. */
  at: number;
}

/** Refills `state` to `now` and applies one request. Mutates and returns the result. */
export function takeFromBucket(state: BucketState, now: number, request: TakeRequest): TakeResult {
  const { capacity, refillPerMs, cost, maxWaitMs } = request;
  const window = request.windowMs ?? 0;
  let tokens = state.tokens;
  if (now > state.at) {
    tokens = Math.min(capacity, tokens + (now - state.at) * refillPerMs);
    state.at = now;
  }
  if (tokens > capacity) tokens = capacity;
  let allowed = true;
  let waitMs = 0;
  if (cost <= 0) {
    tokens = Math.min(capacity, tokens - cost);
  } else if (tokens >= cost) {
    tokens -= cost;
  } else {
    waitMs = window > 0 ? window : ceilMs((cost - tokens) / refillPerMs);
    if (waitMs <= maxWaitMs) tokens -= cost;
    else allowed = false;
  }
  state.tokens = tokens;
  const fullInMs = window > 0 ? (tokens < capacity ? window : 0) : ceilMs((capacity - tokens) / refillPerMs);
  return { allowed, remaining: tokens, waitMs, fullInMs };
}

/** Whole milliseconds, rounding up — but not for float noise (1 / (1/3600000) = 3600000.0000001). */
function ceilMs(ms: number): number {
  return Math.max(0, Math.ceil(ms - 1e-6));
}

/** A store of buckets: in memory (sync) or in Redis (async). */
export interface BucketStore {
  take(request: TakeRequest): TakeResult | Promise<TakeResult>;
}
