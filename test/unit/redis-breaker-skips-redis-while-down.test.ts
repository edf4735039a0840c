// The breaker around Redis (src/ratelimit/redis-breaker.ts) and the store that uses it
// (src/ratelimit/guarded-store.ts), with a fake clock and a fake Redis: after `failures`
// consecutive failed commands no command goes to Redis for `cooldown`; then one probe decides.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RedisBreaker } from '../../src/ratelimit/redis-breaker.js';
import { GuardedRedisStore } from '../../src/ratelimit/guarded-store.js';
import { MemoryBucketStore } from '../../src/ratelimit/memory-store.js';
import type { TakeRequest, TakeResult } from '../../src/ratelimit/bucket.js';
import type { RedisBucketStore } from '../../src/ratelimit/redis-store.js';

const T0 = Date.parse('2026-05-01T08:00:00Z');

function breaker(threshold = 3, cooldownMs = 5_000) {
  const events: string[] = [];
  const b = new RedisBreaker(threshold, cooldownMs, {
    opened: (reason) => events.push(`opened: ${reason}`),
    closed: () => events.push('closed'),
  });
  return { b, events };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('RedisBreaker', () => {
  it('opens after `failures` consecutive failures, and says why once', () => {
    const { b, events } = breaker(3);
    b.failed('timeout');
    b.failed('timeout');
    expect(b.state).toBe('closed');
    expect(b.allow()).toBe(true);
    b.failed('ECONNREFUSED');
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    expect(events).toEqual(['opened: ECONNREFUSED']);
  });

  it('a success in between starts the count again', () => {
    const { b } = breaker(3);
    b.failed('x');
    b.failed('x');
    b.succeeded();
    b.failed('x');
    b.failed('x');
    expect(b.state).toBe('closed');
    b.failed('x');
    expect(b.state).toBe('open');
  });

  it('while open nothing goes to Redis, and retryInMs counts down to the probe', () => {
    const { b } = breaker(1, 5_000);
    b.failed('down');
    expect(b.retryInMs()).toBe(5_000);
    vi.advanceTimersByTime(3_200);
    expect(b.retryInMs()).toBe(1_800);
    expect(b.allow()).toBe(false);
    vi.advanceTimersByTime(1_799);
    expect(b.allow()).toBe(false);
    expect(b.state).toBe('open');
  });

  it('after the cooldown exactly one probe goes through', () => {
    const { b } = breaker(1, 5_000);
    b.failed('down');
    vi.advanceTimersByTime(5_000);
    expect(b.allow()).toBe(true);
    expect(b.state).toBe('half-open');
    expect(b.retryInMs()).toBe(0);
    expect([b.allow(), b.allow()]).toEqual([false, false]);
  });

  it('a successful probe closes it: every check goes to Redis again', () => {
    const { b, events } = breaker(1, 5_000);
    b.failed('down');
    vi.advanceTimersByTime(5_000);
    b.allow();
    b.succeeded();
    expect(b.state).toBe('closed');
    expect([b.allow(), b.allow(), b.allow()]).toEqual([true, true, true]);
    expect(events).toEqual(['opened: down', 'closed']);
  });

  it('a failed probe opens it for another full cooldown, without a second "opened"', () => {
    const { b, events } = breaker(2, 5_000);
    b.failed('down');
    b.failed('down');
    vi.advanceTimersByTime(6_000);
    expect(b.allow()).toBe(true);
    b.failed('still down');
    expect(b.state).toBe('open');
    expect(b.retryInMs()).toBe(5_000);
    vi.advanceTimersByTime(4_999);
    expect(b.allow()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.allow()).toBe(true);
    expect(events).toEqual(['opened: down']);
  });

  it('after closing, it takes `failures` new failures to open again', () => {
    const { b } = breaker(3, 1_000);
    for (let i = 0; i < 3; i++) b.failed('x');
    vi.advanceTimersByTime(1_000);
    b.allow();
    b.succeeded();
    b.failed('x');
    b.failed('x');
    expect(b.state).toBe('closed');
    b.failed('x');
    expect(b.state).toBe('open');
  });

  it('uses the clock it is given', () => {
    let now = 100;
    const b = new RedisBreaker(1, 50, { opened: () => undefined, closed: () => undefined }, () => now);
    b.failed('x');
    now = 149;
    expect(b.allow()).toBe(false);
    now = 150;
    expect(b.allow()).toBe(true);
  });
});

/** A Redis store that answers as the test says. */
function fakeRedis() {
  const calls: TakeRequest[] = [];
  let mode: 'up' | 'down' = 'up';
  const redis = {
    take(request: TakeRequest): Promise<TakeResult> {
      calls.push(request);
      if (mode === 'down') return Promise.reject(new Error('Command timed out'));
      return Promise.resolve({ allowed: true, remaining: 7, waitMs: 0, fullInMs: 3_000 });
    },
    bucketKey: (policy: string, identity: string) => `rl:${policy}:${identity}`,
  };
  return { redis: redis as unknown as RedisBucketStore, calls, set: (next: 'up' | 'down') => (mode = next) };
}

const request: TakeRequest = { key: 'rl:p:a', capacity: 2, refillPerMs: 1 / 1_000, cost: 1, maxWaitMs: 0 };

describe('the rate-limit store behind the Redis breaker', () => {
  function guarded() {
    const fake = fakeRedis();
    const local = new MemoryBucketStore({ sweepEveryMs: 0, clock: () => Date.now() });
    const degraded: string[] = [];
    const store = new GuardedRedisStore(
      fake.redis,
      local,
      { failures: 2, cooldown: 4_000 },
      { degraded: (on, reason) => degraded.push(`${on}: ${reason}`) },
    );
    return { store, fake, degraded };
  }

  it('Redis failing: the fallback answers at once, and after `failures` no command is sent at all', async () => {
    const { store, fake, degraded } = guarded();
    fake.set('down');
    expect(await store.take(request, 'open')).toEqual({ source: 'open', allowed: true });
    expect(await store.take(request, 'open')).toEqual({ source: 'open', allowed: true });
    expect(fake.calls.length).toBe(2);
    expect(degraded).toEqual(['true: redis: Command timed out']);
    const skipped = store.take(request, 'open');
    expect(skipped).toEqual({ source: 'open', allowed: true }); // synchronous: Redis is not asked
    expect(fake.calls.length).toBe(2);
  });

  it('onRedisError closed: 503 with a retry after the time left to the probe, at least 1 s', async () => {
    const { store, fake } = guarded();
    fake.set('down');
    await store.take(request, 'closed');
    expect(await store.take(request, 'closed')).toEqual({ source: 'unavailable', allowed: false, retryAfterMs: 4_000 });
    vi.advanceTimersByTime(2_500);
    expect(store.take(request, 'closed')).toEqual({ source: 'unavailable', allowed: false, retryAfterMs: 1_500 });
    vi.advanceTimersByTime(1_000);
    expect(store.take(request, 'closed')).toEqual({ source: 'unavailable', allowed: false, retryAfterMs: 1_000 });
  });

  it('onRedisError local: an in-process bucket meters the client meanwhile', async () => {
    const { store, fake } = guarded();
    fake.set('down');
    const local = [await store.take(request, 'local'), await store.take(request, 'local'), await store.take(request, 'local')];
    expect(local.map((r) => [r.source, r.allowed])).toEqual([
      ['local', true],
      ['local', true],
      ['local', false],
    ]);
  });

  it('Redis back: the probe after the cooldown closes the breaker and decisions come from Redis again', async () => {
    const { store, fake, degraded } = guarded();
    fake.set('down');
    await store.take(request, 'open');
    await store.take(request, 'open');
    fake.set('up');
    vi.advanceTimersByTime(3_999);
    expect(store.take(request, 'open')).toEqual({ source: 'open', allowed: true });
    expect(fake.calls.length).toBe(2);
    vi.advanceTimersByTime(1);
    expect(await store.take(request, 'open')).toEqual({ source: 'store', allowed: true, remaining: 7, waitMs: 0, fullInMs: 3_000 });
    expect(fake.calls.length).toBe(3);
    expect(degraded).toEqual(['true: redis: Command timed out', 'false: redis answered again']);
    expect(store.breaker.state).toBe('closed');
  });

  it('while the probe is out, other checks use the fallback instead of piling onto Redis', async () => {
    const { store, fake } = guarded();
    fake.set('down');
    await store.take(request, 'open');
    await store.take(request, 'open');
    fake.set('up');
    vi.advanceTimersByTime(4_000);
    const probe = store.take(request, 'open');
    expect(store.take(request, 'open')).toEqual({ source: 'open', allowed: true });
    expect(fake.calls.length).toBe(3);
    await probe;
    expect(store.breaker.state).toBe('closed');
  });
});
