import { describe, expect, it } from 'vitest';
import { BackendState } from '../src/state/backend-state.js';
import { pickBackend, soonestReady, type BalanceMode, type SelectableBackend } from '../src/balance/select.js';

const NOW = 1_000_000;

function backends(spec: Array<[priority: number, weight: number]>): SelectableBackend[] {
  return spec.map(([priority, weight], index) => ({ index, priority, weight, state: new BackendState(`b${index}`) }));
}

/** Deterministic PRNG (mulberry32) so proportions are reproducible. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shares(pool: SelectableBackend[], balance: BalanceMode, n = 30_000): number[] {
  const counts = pool.map(() => 0);
  const random = seeded(42);
  const cursor = { current: new Float64Array(pool.length) };
  for (let i = 0; i < n; i++) counts[pickBackend({ backends: pool, balance, now: NOW, tried: 0, random, cursor })!.index]!++;
  return counts.map((c) => c / n);
}

describe('pickBackend', () => {
  it('uses the lowest priority number that has a ready backend, weighted within it', () => {
    const pool = backends([
      [1, 2],
      [1, 1],
      [2, 1],
    ]);
    const [a, b, c] = shares(pool, 'priority');
    expect(a).toBeCloseTo(2 / 3, 1);
    expect(b).toBeCloseTo(1 / 3, 1);
    expect(c).toBe(0);
  });

  it('skips cooling and already-tried backends, then spills to the next priority', () => {
    const pool = backends([
      [1, 1],
      [1, 1],
      [2, 1],
    ]);
    pool[0]!.state.cooldownUntil = NOW + 1000;
    const random = seeded(1);
    expect(pickBackend({ backends: pool, balance: 'priority', now: NOW, tried: 0, random })!.index).toBe(1);
    expect(pickBackend({ backends: pool, balance: 'priority', now: NOW, tried: 0b10, random })!.index).toBe(2);
    expect(pickBackend({ backends: pool, balance: 'priority', now: NOW, tried: 0b110, random })).toBeUndefined();
    // cooldown over → back in rotation
    expect(pickBackend({ backends: pool, balance: 'priority', now: NOW + 1000, tried: 0b10, random })!.index).toBe(0);
  });

  it('round-robin rotates by weight within the lowest priority (smooth WRR)', () => {
    const pool = backends([
      [1, 3],
      [1, 1],
      [2, 5],
    ]);
    const cursor = { current: new Float64Array(3) };
    const order = Array.from(
      { length: 8 },
      () => pickBackend({ backends: pool, balance: 'round-robin', now: NOW, tried: 0, random: Math.random, cursor })!.index,
    );
    expect(order.filter((i) => i === 0)).toHaveLength(6);
    expect(order.filter((i) => i === 1)).toHaveLength(2);
    expect(order).not.toContain(2);
  });

  it('least-outstanding prefers the backend with fewer requests in flight per weight', () => {
    const pool = backends([
      [1, 1],
      [1, 1],
    ]);
    pool[0]!.state.inFlight = 5;
    pool[1]!.state.inFlight = 2;
    expect(pickBackend({ backends: pool, balance: 'least-outstanding', now: NOW, tried: 0, random: Math.random })!.index).toBe(1);
    const [a, b] = shares(
      backends([
        [1, 1],
        [1, 1],
      ]),
      'least-outstanding',
      4000,
    );
    expect(a).toBeGreaterThan(0.4);
    expect(b).toBeGreaterThan(0.4);
  });

  it('soonestReady is the earliest cooldown end (or now when one is ready)', () => {
    const pool = backends([
      [1, 1],
      [2, 1],
    ]);
    pool[0]!.state.cooldownUntil = NOW + 3000;
    pool[1]!.state.cooldownUntil = NOW + 1200;
    expect(soonestReady(pool, NOW)).toBe(NOW + 1200);
    pool[1]!.state.cooldownUntil = 0;
    expect(soonestReady(pool, NOW)).toBe(NOW);
  });
});
