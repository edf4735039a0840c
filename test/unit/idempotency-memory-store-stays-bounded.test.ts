// The in-memory idempotency store (src/idempotency/memory-store.ts): leases, stored answers,
// expiry, and a byte bound that holds under 100k distinct keys (least recently used go first).

import { describe, expect, it } from 'vitest';
import { MemoryIdempotencyStore } from '../../src/idempotency/memory-store.js';

const answer = (text: string) => ({
  status: 201,
  headers: [['content-type', 'text/plain']] as Array<[string, string]>,
  body: Buffer.from(text),
});

describe('memory idempotency store', () => {
  it('lease → in flight for others → stored answer; release frees the key', async () => {
    let now = 1_000;
    const store = new MemoryIdempotencyStore(1 << 20, () => now);
    const first = await store.begin('k', 'fp', 5_000);
    expect(first.kind).toBe('acquired');
    expect(await store.begin('k', 'fp', 5_000)).toEqual({ kind: 'in-flight', fingerprint: 'fp', leaseLeftMs: 5_000 });
    await store.complete('k', (first as { token: string }).token, 'fp', answer('done'), 60_000);
    const again = await store.begin('k', 'other', 5_000);
    expect(again).toMatchObject({ kind: 'done', fingerprint: 'fp' });
    now += 60_001;
    expect((await store.begin('k', 'fp', 5_000)).kind).toBe('acquired');

    const lease = await store.begin('r', 'fp', 5_000);
    await store.release('r', (lease as { token: string }).token);
    expect((await store.begin('r', 'fp', 5_000)).kind).toBe('acquired');
  });

  it('a lease expires by itself (a crashed replica does not lock the key)', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore(1 << 20, () => now);
    await store.begin('k', 'fp', 2_000);
    now = 2_000;
    expect((await store.begin('k', 'fp', 2_000)).kind).toBe('acquired');
  });

  it('a stale lease holder cannot overwrite the key another request holds now', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore(1 << 20, () => now);
    const old = (await store.begin('k', 'fp', 1_000)) as { token: string };
    now = 1_000;
    await store.begin('k', 'fp', 1_000);
    await store.complete('k', old.token, 'fp', answer('late'), 60_000);
    expect((await store.begin('k', 'fp', 1_000)).kind).toBe('in-flight');
  });

  it('stays within its byte limit under 100k distinct keys, dropping the least recently used', async () => {
    const limit = 4 * 1024 * 1024;
    const store = new MemoryIdempotencyStore(limit);
    const body = 'x'.repeat(200);
    let peak = 0;
    for (let i = 0; i < 100_000; i++) {
      const key = `key-${i}`;
      const lease = (await store.begin(key, 'fp', 10_000)) as { token: string };
      await store.complete(key, lease.token, 'fp', answer(body), 86_400_000);
      if (i === 10) await store.begin('key-0', 'fp', 10_000); // key-0 used again: kept longer
      peak = Math.max(peak, store.bytes);
    }
    expect(peak).toBeLessThanOrEqual(limit);
    expect(store.size).toBeLessThan(100_000);
    expect(store.size).toBeGreaterThan(1_000);
    expect((await store.begin('key-99999', 'fp', 10_000)).kind).toBe('done');
    expect((await store.begin('key-5', 'fp', 10_000)).kind).toBe('acquired');
  });
});
