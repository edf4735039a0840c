// The memory cache store: least recently used entries go first once the byte bound is passed;
// entries expire with their retention; purges match path prefixes.

import CachePolicy from 'http-cache-semantics';
import { describe, expect, it } from 'vitest';
import type { CacheEntry } from '../../src/cache/entry.js';
import { decodeValue, encodeValue } from '../../src/cache/entry.js';
import { MemoryCacheStore } from '../../src/state/cache-memory.js';
import { CollapseLocks } from '../../src/state/cache-registry.js';

function entry(target: string, bytes: number): CacheEntry {
  const policy = new CachePolicy({ url: target, headers: {} }, { status: 200, headers: { 'cache-control': 'max-age=60' } });
  return { target, policy, body: Buffer.alloc(bytes, 1), stream: false, retainMs: 60_000, staleIfErrorMs: 0 };
}

describe('MemoryCacheStore', () => {
  it('evicts the least recently used entries to stay within maxBytes', () => {
    const store = new MemoryCacheStore(10 * 1024, 8 * 1024);
    for (let i = 0; i < 4; i++) store.set(`/k${i}`, entry(`/k${i}`, 2000), 60_000);
    expect(store.size).toBe(4);
    store.get('/k0'); // now most recently used
    store.set('/k4', entry('/k4', 2000), 60_000);
    store.set('/k5', entry('/k5', 2000), 60_000);
    expect(store.bytes).toBeLessThanOrEqual(10 * 1024);
    expect(store.get('/k0')).toBeDefined();
    expect(store.get('/k1')).toBeUndefined();
    expect(store.get('/k5')).toBeDefined();
  });

  it('never keeps a value larger than maxBody', () => {
    const store = new MemoryCacheStore(1024 * 1024, 1000);
    store.set('/big', entry('/big', 10_000), 60_000);
    expect(store.size).toBe(0);
  });

  it('expires entries after their retention', () => {
    let now = 1_000;
    const store = new MemoryCacheStore(1024 * 1024, 100_000, () => now);
    store.set('/a', entry('/a', 10), 5_000);
    now += 4_999;
    expect(store.get('/a')).toBeDefined();
    now += 1;
    expect(store.get('/a')).toBeUndefined();
    expect(store.bytes).toBe(0);
  });

  it('purges by path prefix', async () => {
    const store = new MemoryCacheStore(1024 * 1024, 100_000);
    for (const target of ['/users/1', '/users/2?x=1', '/orders/1']) store.set(`${target}\u0000h`, entry(target, 10), 60_000);
    expect(await store.purge('/users/')).toBe(2);
    expect(store.size).toBe(1);
  });
});

describe('stored entry encoding (Redis)', () => {
  it('round-trips an entry; foreign bytes read as a miss', () => {
    const original = entry('/a?b=1', 100);
    const decoded = decodeValue(encodeValue(original)) as CacheEntry;
    expect(decoded.target).toBe('/a?b=1');
    expect(decoded.body.equals(original.body)).toBe(true);
    expect(decoded.policy.maxAge()).toBe(60);
    expect(decodeValue(Buffer.from('garbage bytes'))).toBeUndefined();
  });
});

describe('CollapseLocks', () => {
  it('one leader per key; waiters get its entry; a lost leader is taken over after maxHold', async () => {
    let now = 0;
    const locks = new CollapseLocks(() => now);
    const flight = locks.lead('k', 1_000)!;
    expect(flight).toBeDefined();
    expect(locks.lead('k', 1_000)).toBeUndefined();
    const waiting = locks.wait('k', 5_000);
    const stored = entry('/k', 1);
    locks.release(flight, stored);
    expect(await waiting).toBe(stored);
    expect(locks.size).toBe(0);

    const lost = locks.lead('k', 1_000)!;
    const abandoned = locks.wait('k', 5_000);
    now += 1_001;
    const next = locks.lead('k', 1_000);
    expect(next).toBeDefined();
    expect(await abandoned).toBeUndefined();
    // The lost leader reporting late does not end the new leader's flight.
    locks.release(lost, undefined);
    expect(locks.isInFlight('k')).toBe(true);
  });
});
