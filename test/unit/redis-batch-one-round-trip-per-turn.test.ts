// The Redis batcher (src/ratelimit/redis-batch.ts) with a fake script call: the checks of one
// event-loop turn go out as one call (one per hash slot on a cluster), and a check given up on at
// the hard bound whose late reply shows it took a token gets that token given back.

import { describe, expect, it } from 'vitest';
import type { TakeRequest } from '../../src/ratelimit/bucket.js';
import { RedisBatcher, RoundTripError } from '../../src/ratelimit/redis-batch.js';

const check = (key: string, cost = 1): TakeRequest => ({ key, capacity: 10, refillPerMs: 0.001, cost, maxWaitMs: 0 });
const allowAll = (args: readonly (string | number)[]) => Array.from({ length: Number(args[0]) }, () => [1, '9', 0, 1000]).flat();

describe('RedisBatcher', () => {
  it('one call per turn on a standalone Redis; one per slot on a cluster', async () => {
    const calls: Array<{ keys: readonly string[]; n: number }> = [];
    const call = async (keys: readonly string[], args: readonly (string | number)[]) => {
      calls.push({ keys, n: Number(args[0]) });
      return allowAll(args);
    };
    const single = new RedisBatcher(call, { commandTimeout: 50, hardTimeout: 500, bySlot: false });
    const results = await Promise.all([single.take(check('p{a}')), single.take(check('p{a}')), single.take(check('p{b}'))]);
    expect(results.every((r) => r.allowed && r.remaining === 9)).toBe(true);
    expect(calls).toEqual([{ keys: ['p{a}', 'p{b}'], n: 3 }]);
    calls.length = 0;
    const cluster = new RedisBatcher(call, { commandTimeout: 50, hardTimeout: 500, bySlot: true });
    await Promise.all([cluster.take(check('p{a}')), cluster.take(check('p{b}')), cluster.take(check('p{a}'))]);
    expect(calls).toEqual([
      { keys: ['p{a}'], n: 2 },
      { keys: ['p{b}'], n: 1 },
    ]);
  });

  it('past hardTimeout the check fails (one error for the batch); a late "allowed" is given back', async () => {
    const calls: Array<{ keys: readonly string[]; args: readonly (string | number)[] }> = [];
    let first = true;
    const call = (keys: readonly string[], args: readonly (string | number)[]) => {
      calls.push({ keys, args });
      if (!first) return Promise.resolve(allowAll(args));
      first = false;
      return new Promise<unknown>((resolve) => setTimeout(() => resolve(allowAll(args)), 150));
    };
    const batcher = new RedisBatcher(call, { commandTimeout: 20, hardTimeout: 40, bySlot: false });
    const started = performance.now();
    const outcomes = await Promise.allSettled([batcher.take(check('k')), batcher.take(check('k'))]);
    expect(performance.now() - started).toBeLessThan(140);
    const errors = outcomes.map((o) => (o.status === 'rejected' ? o.reason : undefined));
    expect(errors[0]).toBeInstanceOf(RoundTripError);
    expect(errors[0]).toBe(errors[1]);
    expect((errors[0] as RoundTripError).timedOut).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(batcher.lateRefunds).toBe(2);
    // the refund: the same bucket, cost -1 for each check Redis took
    expect(calls[1]!.keys).toEqual(['k']);
    expect(calls[1]!.args).toEqual([2, 1, 10, 0.001, -1, 0, 0, 1, 10, 0.001, -1, 0, 0]);
  });
});
