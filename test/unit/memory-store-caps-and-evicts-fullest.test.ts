// The in-process bucket store's bounds (src/ratelimit/memory-store.ts): at most `maxBuckets`
// buckets, the fullest evicted first when a new client needs room, evictions reported, and an
// identity's length costing nothing (identities are hashed).

import { afterEach, describe, expect, it } from 'vitest';
import type { TakeRequest } from '../../src/ratelimit/bucket.js';
import { MemoryBucketStore } from '../../src/ratelimit/memory-store.js';

/** 10 tokens, one more per second. */
function req(key: string, cost = 1): TakeRequest {
  return { key, capacity: 10, refillPerMs: 1 / 1_000, cost, maxWaitMs: 0 };
}

let stores: MemoryBucketStore[] = [];
afterEach(() => {
  for (const s of stores) s.close();
  stores = [];
});

function store(maxBuckets: number, now: { t: number }) {
  const evicted: number[] = [];
  const made = new MemoryBucketStore({ clock: () => now.t, sweepEveryMs: 0, maxBuckets, onEvict: (n) => evicted.push(n) });
  stores.push(made);
  return { s: made, evicted };
}

describe('the bucket cap', () => {
  it('never holds more than maxBuckets and evicts the fullest bucket first', () => {
    const now = { t: 0 };
    const { s, evicted } = store(3, now);
    s.take(req('heavy', 9)); // 1 token left
    s.take(req('medium', 5)); // 5 left
    s.take(req('light', 1)); // 9 left: the fullest
    expect(s.size).toBe(3);

    s.take(req('newcomer', 1));
    expect(s.size).toBe(3);
    expect(evicted).toEqual([1]);
    expect(s.evictions).toBe(1);
    // The evicted one comes back full (10 → 9 after this take); the others kept their state.
    expect(s.take(req('light', 1)).remaining).toBe(9);
    expect(evicted).toEqual([1, 1]); // 'light' needed room again: 'newcomer' (9 left) went this time
    expect(s.take(req('heavy', 1)).remaining).toBe(0);
    expect(s.take(req('medium', 1)).remaining).toBe(4);
  });

  it('fullest means the smallest share of its capacity missing, across policies of different sizes', () => {
    const now = { t: 0 };
    const { s } = store(2, now);
    // 3 of 100 missing (3%) vs 1 of 2 missing (50%): the big bucket is the fuller one.
    s.take({ key: 'big', capacity: 100, refillPerMs: 1 / 1_000, cost: 3, maxWaitMs: 0 });
    s.take({ key: 'small', capacity: 2, refillPerMs: 1 / 60_000, cost: 1, maxWaitMs: 0 });
    s.take(req('new'));
    expect(s.take({ key: 'small', capacity: 2, refillPerMs: 1 / 60_000, cost: 1, maxWaitMs: 0 }).allowed).toBe(true);
    expect(s.take({ key: 'small', capacity: 2, refillPerMs: 1 / 60_000, cost: 1, maxWaitMs: 0 }).allowed).toBe(false);
  });

  it('buckets full again go before any partly used one, and are not counted as evictions', () => {
    const now = { t: 0 };
    const { s, evicted } = store(3, now);
    s.take(req('a', 1));
    now.t = 500;
    s.take(req('b', 8));
    s.take(req('c', 8));
    now.t = 2_000; // 'a' is full again (1 s to refill one token), 'b' and 'c' are not
    s.take(req('d', 1));
    expect(evicted).toEqual([]);
    expect(s.size).toBe(3);
    expect(s.take(req('b', 1)).remaining).toBeLessThan(5);
    expect(s.take(req('c', 1)).remaining).toBeLessThan(5);
  });

  it('frees 1% of a large cap at once, keeping the most used buckets', () => {
    const now = { t: 0 };
    const { s, evicted } = store(1_000, now);
    for (let i = 0; i < 1_000; i++) s.take(req(`k${i}`, i < 500 ? 9 : 1));
    s.take(req('one-more'));
    expect(evicted).toEqual([10]);
    expect(s.size).toBe(991);
    // Every heavily used bucket is still there (1 token left, 0 after this take).
    for (let i = 0; i < 500; i++) expect(s.take(req(`k${i}`)).remaining).toBe(0);
  });

  it('a lower cap set at reload applies to the next new bucket', () => {
    const now = { t: 0 };
    const { s } = store(100, now);
    for (let i = 0; i < 50; i++) s.take(req(`k${i}`, 2));
    s.maxBuckets = 10;
    s.take(req('new'));
    expect(s.size).toBeLessThanOrEqual(10);
  });
});

describe('identities', () => {
  it('an 8 KB identity and a short one are both kept, distinct, and looked up exactly', () => {
    const now = { t: 0 };
    const { s } = store(10, now);
    const long = 'x'.repeat(8 * 1024);
    s.take(req(long, 4));
    s.take(req(`${long}y`, 2));
    expect(s.take(req(long, 1)).remaining).toBe(5);
    expect(s.take(req(`${long}y`, 1)).remaining).toBe(7);
    expect(s.take(req('short', 1)).remaining).toBe(9);
  });
});
