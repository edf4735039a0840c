// The token bucket (src/ratelimit/bucket.ts) and the in-process store around it
// (src/ratelimit/memory-store.ts), with the store's clock faked: refill, cost, the capacity cap,
// queue mode (maxWait) and what a refused client is told (src/ratelimit/refusal.ts).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { takeFromBucket, type BucketState, type TakeRequest } from '../../src/ratelimit/bucket.js';
import { MemoryBucketStore } from '../../src/ratelimit/memory-store.js';
import { refusalFor } from '../../src/ratelimit/refusal.js';

/** 5 tokens, one more per second. */
const PER_SECOND = 1 / 1_000;

function req(overrides: Partial<TakeRequest> = {}): TakeRequest {
  return { key: 'client-a', capacity: 5, refillPerMs: PER_SECOND, cost: 1, maxWaitMs: 0, ...overrides };
}

let stores: MemoryBucketStore[] = [];

/** A memory store on the default clock (performance.now), which the fake timers drive. */
function store(sweepEveryMs = 0): MemoryBucketStore {
  const made = new MemoryBucketStore({ sweepEveryMs });
  stores.push(made);
  return made;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
});

afterEach(() => {
  for (const s of stores) s.close();
  stores = [];
  vi.useRealTimers();
});

describe('burst and refill', () => {
  it('a new client gets the full burst, then is refused until the next token is due', () => {
    const s = store();
    const burst = Array.from({ length: 5 }, () => s.take(req()));
    expect(burst.map((r) => [r.allowed, r.remaining])).toEqual([
      [true, 4],
      [true, 3],
      [true, 2],
      [true, 1],
      [true, 0],
    ]);
    expect(s.take(req())).toEqual({ allowed: false, remaining: 0, waitMs: 1_000, fullInMs: 5_000 });
  });

  it('tokens come back at the refill rate, fractions included', () => {
    const s = store();
    for (let i = 0; i < 5; i++) s.take(req());
    vi.advanceTimersByTime(999);
    expect(s.take(req())).toEqual({ allowed: false, remaining: 0.999, waitMs: 1, fullInMs: 4_001 });
    vi.advanceTimersByTime(1);
    expect(s.take(req())).toMatchObject({ allowed: true, waitMs: 0 });
    vi.advanceTimersByTime(2_500);
    const after = s.take(req());
    expect(after.allowed).toBe(true);
    expect(after.remaining).toBeCloseTo(1.5, 9);
    expect(after.fullInMs).toBe(3_500);
  });

  it('an idle client never saves up more than capacity', () => {
    const s = store();
    s.take(req());
    vi.advanceTimersByTime(3_600_000);
    const burst = Array.from({ length: 6 }, () => s.take(req()).allowed);
    expect(burst).toEqual([true, true, true, true, true, false]);
  });

  it('a refused request takes nothing: the client is not pushed further back', () => {
    const s = store();
    for (let i = 0; i < 5; i++) s.take(req());
    for (let i = 0; i < 10; i++) expect(s.take(req()).allowed).toBe(false);
    vi.advanceTimersByTime(1_000);
    expect(s.take(req()).allowed).toBe(true);
  });

  it('each client key has its own bucket', () => {
    const s = store();
    for (let i = 0; i < 5; i++) s.take(req({ key: 'a' }));
    expect(s.take(req({ key: 'a' })).allowed).toBe(false);
    expect(s.take(req({ key: 'b' }))).toMatchObject({ allowed: true, remaining: 4 });
  });

  it('new numbers (a reload) apply to an existing bucket, capped at the new capacity', () => {
    const s = store();
    s.take(req({ capacity: 5 })); // 4 left
    expect(s.take(req({ capacity: 2 }))).toMatchObject({ allowed: true, remaining: 1 });
  });
});

describe('cost', () => {
  it('a request costing 3 takes 3 tokens, and is refused while fewer are there', () => {
    const s = store();
    expect(s.take(req({ cost: 3 }))).toMatchObject({ allowed: true, remaining: 2 });
    expect(s.take(req({ cost: 3 }))).toEqual({ allowed: false, remaining: 2, waitMs: 1_000, fullInMs: 3_000 });
    expect(s.take(req({ cost: 1 }))).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('a cost above capacity is never allowed', () => {
    const s = store();
    vi.advanceTimersByTime(60_000);
    expect(s.take(req({ cost: 6 }))).toEqual({ allowed: false, remaining: 5, waitMs: 1_000, fullInMs: 0 });
  });

  it('a refund (negative cost) gives tokens back, never above capacity', () => {
    const s = store();
    s.take(req({ cost: 3 }));
    expect(s.take(req({ cost: -3 }))).toMatchObject({ allowed: true, remaining: 5, fullInMs: 0 });
    expect(s.take(req({ cost: -3 }))).toMatchObject({ allowed: true, remaining: 5 });
  });
});

describe('queue mode (maxWait)', () => {
  it('holds requests whose token is due within maxWait, in order, and refuses the rest', () => {
    const s = store();
    const queued = req({ capacity: 2, maxWaitMs: 2_000 });
    s.take(queued);
    s.take(queued);
    expect(s.take(queued)).toEqual({ allowed: true, remaining: -1, waitMs: 1_000, fullInMs: 3_000 });
    expect(s.take(queued)).toEqual({ allowed: true, remaining: -2, waitMs: 2_000, fullInMs: 4_000 });
    expect(s.take(queued)).toEqual({ allowed: false, remaining: -2, waitMs: 3_000, fullInMs: 4_000 });
  });

  it('as time passes the reservations are paid off and later requests wait less', () => {
    const s = store();
    const queued = req({ capacity: 1, maxWaitMs: 1_500 });
    s.take(queued);
    expect(s.take(queued).waitMs).toBe(1_000);
    expect(s.take(queued)).toMatchObject({ allowed: false, waitMs: 2_000 }); // beyond maxWait
    vi.advanceTimersByTime(600);
    const held = s.take(queued); // the first reservation is 600 ms paid off
    expect([held.allowed, held.waitMs]).toEqual([true, 1_400]);
    expect(held.remaining).toBeCloseTo(-1.4, 9);
    expect(held.fullInMs).toBe(2_400);
    expect(s.take(queued)).toMatchObject({ allowed: false, waitMs: 2_400 });
  });

  it('maxWait 0 refuses at once instead of holding', () => {
    const s = store();
    s.take(req({ capacity: 1 }));
    expect(s.take(req({ capacity: 1, maxWaitMs: 0 }))).toMatchObject({ allowed: false, waitMs: 1_000 });
  });

  it('a token due exactly at maxWait is still held', () => {
    const s = store();
    s.take(req({ capacity: 1 }));
    expect(s.take(req({ capacity: 1, maxWaitMs: 1_000 }))).toMatchObject({ allowed: true, waitMs: 1_000 });
  });
});

describe('arithmetic edges', () => {
  it('waits round up to whole milliseconds, but float noise does not add one', () => {
    const state: BucketState = { tokens: 0, at: 0 };
    // one token per hour: 1 / (1/3_600_000) is 3600000.0000000005 in floating point
    expect(takeFromBucket(state, 0, req({ capacity: 1, refillPerMs: 1 / 3_600_000 })).waitMs).toBe(3_600_000);
    // 3 per second: a token every 333.33 ms → wait 334
    expect(takeFromBucket({ tokens: 0, at: 0 }, 0, req({ refillPerMs: 3 / 1_000 })).waitMs).toBe(334);
  });

  it('a clock that goes backwards neither refills nor drains', () => {
    const state: BucketState = { tokens: 2, at: 10_000 };
    expect(takeFromBucket(state, 5_000, req())).toMatchObject({ allowed: true, remaining: 1 });
    expect(state.at).toBe(10_000);
  });
});

describe('idle buckets are swept', () => {
  it('a bucket is dropped once it is full again, and a swept client starts with a full burst', () => {
    const s = store(30_000);
    s.take(req({ key: 'a' })); // full again after 1 s
    s.take(req({ key: 'b', cost: 5, capacity: 5, refillPerMs: 1 / 60_000 })); // full again after 5 min
    expect(s.size).toBe(2);
    vi.advanceTimersByTime(30_000);
    expect(s.size).toBe(1);
    vi.advanceTimersByTime(270_000);
    expect(s.size).toBe(0);
    expect(s.take(req({ key: 'b', capacity: 5, refillPerMs: 1 / 60_000 }))).toMatchObject({ allowed: true, remaining: 4 });
  });

  it('close stops the sweeper', () => {
    const before = vi.getTimerCount();
    const s = store(30_000);
    expect(vi.getTimerCount()).toBe(before + 1);
    s.close();
    expect(vi.getTimerCount()).toBe(before);
  });
});

describe('what a refused client is told', () => {
  it('Retry-After in whole seconds rounded up, retry-after-ms exact', () => {
    const refusal = refusalFor({ kind: 'limited', policy: 'per-key', retryAfterMs: 1_500, headers: { ratelimit: '"per-key";r=0;t=5' } });
    expect(refusal.code).toBe('client-rate-limited');
    expect(refusal.detail).toBe('rate limit "per-key" exceeded; retry in 2s');
    expect(refusal.options.headers).toEqual({ ratelimit: '"per-key";r=0;t=5', 'retry-after': '2', 'retry-after-ms': '1500' });
  });

  it('the wait from the bucket becomes the Retry-After of the 429', () => {
    const s = store();
    for (let i = 0; i < 5; i++) s.take(req());
    vi.advanceTimersByTime(250);
    const refused = s.take(req());
    expect(refused.waitMs).toBe(750);
    const refusal = refusalFor({ kind: 'limited', policy: 'per-key', retryAfterMs: refused.waitMs, headers: {} });
    expect(refusal.options.headers).toEqual({ 'retry-after': '1', 'retry-after-ms': '750' });
  });

  it('never Retry-After: 0', () => {
    const refusal = refusalFor({ kind: 'limited', policy: 'p', retryAfterMs: 0, headers: {} });
    expect(refusal.options.headers).toEqual({ 'retry-after': '1', 'retry-after-ms': '1' });
    expect(refusalFor({ kind: 'unavailable', policy: 'p', retryAfterMs: 0 }).options.headers).toEqual({ 'retry-after': '1' });
  });
});
