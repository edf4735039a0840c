// The per-backend circuit breaker (src/resilience/breaker.ts) driven with fake timers: no
// sockets, no sleeps. Outcomes of closed-state attempts go through opossum's promise, so each
// one needs a few microtasks before the breaker decides; `settle()` runs them.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackendBreaker, type BreakerVerdict } from '../../src/resilience/breaker.js';
import type { BreakerPolicy } from '../../src/resilience/policy.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');

function policy(overrides: Partial<BreakerPolicy> = {}): BreakerPolicy {
  return {
    failureRate: 0.5,
    minRequests: 4,
    window: 10_000,
    openFor: 30_000,
    halfOpenRequests: 2,
    statuses: new Set([500, 502, 503, 504]),
    key: 'test',
    ...overrides,
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

let live: BackendBreaker[] = [];

function breaker(overrides: Partial<BreakerPolicy> = {}) {
  const changes: string[] = [];
  const b = new BackendBreaker(policy(overrides), (state) => changes.push(state));
  live.push(b);
  return { b, changes };
}

/** One attempt sent now and ended with `verdict`. */
async function attempt(b: BackendBreaker, verdict: BreakerVerdict): Promise<void> {
  b.end(b.begin(), verdict);
  await settle();
}

async function attempts(b: BackendBreaker, verdicts: BreakerVerdict[]): Promise<void> {
  for (const verdict of verdicts) await attempt(b, verdict);
}

/** Drives a fresh breaker to open at the current fake time. */
async function tripped(overrides: Partial<BreakerPolicy> = {}) {
  const made = breaker(overrides);
  await attempts(made.b, ['failure', 'failure', 'failure', 'failure']);
  expect(made.b.state).toBe('open');
  return made;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  for (const b of live) b.shutdown();
  live = [];
  vi.useRealTimers();
});

describe('closed → open', () => {
  it('a backend with fewer than minRequests requests in the window is never cut off, even if every one failed', async () => {
    const { b, changes } = breaker();
    await attempts(b, ['failure', 'failure', 'failure']);
    expect(b.state).toBe('closed');
    expect(b.canPass()).toBe(true);
    expect(changes).toEqual([]);
  });

  it('opens on the failure that makes minRequests requests with more than failureRate failed', async () => {
    const { b, changes } = breaker();
    await attempts(b, ['success', 'failure', 'failure']);
    expect(b.state).toBe('closed');
    vi.setSystemTime(T0 + 1234);
    await attempt(b, 'failure');
    expect(b.state).toBe('open');
    expect(changes).toEqual(['open']);
    expect(b.canPass()).toBe(false);
    expect(b.openedAt).toBe(T0 + 1234);
    expect(b.halfOpenAt).toBe(T0 + 1234 + 30_000);
  });

  it('exactly failureRate failed is not enough: it takes more than that share', async () => {
    const { b, changes } = breaker();
    await attempts(b, ['success', 'success', 'failure', 'failure']);
    expect(b.state).toBe('closed');
    await attempt(b, 'failure'); // 3 of 5 = 60 %
    expect(b.state).toBe('open');
    expect(changes).toEqual(['open']);
  });

  it('a low failure rate keeps it closed however many requests fail in total', async () => {
    const { b } = breaker({ failureRate: 0.5, minRequests: 4 });
    // 2 successes per failure: 33 % failed, 30 failures in all.
    for (let i = 0; i < 30; i++) await attempts(b, ['success', 'success', 'failure']);
    expect(b.state).toBe('closed');
    expect(b.canPass()).toBe(true);
  });

  it('the rate is judged when a failure arrives: a success never trips it, the next failure does', async () => {
    const { b } = breaker();
    await attempts(b, ['failure', 'failure', 'failure', 'success']); // 4 seen, 75 % failed
    expect(b.state).toBe('closed');
    await attempt(b, 'failure');
    expect(b.state).toBe('open');
  });

  it('neutral outcomes (throttling, 4xx) neither count as requests nor as failures', async () => {
    const { b } = breaker();
    await attempts(b, ['failure', 'failure', 'failure', 'neutral', 'neutral', 'neutral', 'neutral', 'neutral']);
    expect(b.state).toBe('closed');
    await attempt(b, 'failure'); // the 4th counted request
    expect(b.state).toBe('open');
  });

  it('a 0 % failureRate trips on the first failure once minRequests were seen', async () => {
    const { b } = breaker({ failureRate: 0, minRequests: 3 });
    await attempts(b, ['success', 'success', 'success', 'success']);
    expect(b.state).toBe('closed');
    await attempt(b, 'failure');
    expect(b.state).toBe('open');
  });
});

describe('the rolling window', () => {
  it('failures still count just before `window` has passed', async () => {
    const { b } = breaker();
    await attempts(b, ['failure', 'failure', 'failure']);
    await vi.advanceTimersByTimeAsync(9_999);
    await attempt(b, 'failure');
    expect(b.state).toBe('open');
  });

  it('failures older than `window` are forgotten', async () => {
    const { b } = breaker();
    await attempts(b, ['failure', 'failure', 'failure']);
    await vi.advanceTimersByTimeAsync(10_000);
    await attempt(b, 'failure');
    expect(b.state).toBe('closed');
    await attempts(b, ['failure', 'failure']);
    expect(b.state).toBe('closed');
    await attempt(b, 'failure'); // four fresh failures
    expect(b.state).toBe('open');
  });

  it('the window slides: only the part of the history inside it counts', async () => {
    const { b } = breaker();
    await attempts(b, ['failure', 'failure']); // t = 0
    await vi.advanceTimersByTimeAsync(5_000);
    await attempt(b, 'failure'); // t = 5 s
    await vi.advanceTimersByTimeAsync(5_000); // t = 10 s: the two from t = 0 slid out
    await attempt(b, 'failure');
    expect(b.state).toBe('closed'); // 2 in the window
    await attempt(b, 'failure');
    expect(b.state).toBe('closed'); // 3 in the window
    await attempt(b, 'failure');
    expect(b.state).toBe('open'); // 4 in the window
  });

  it('successes slide out too, so an old good stretch does not dilute new failures', async () => {
    const { b } = breaker();
    await attempts(b, Array<BreakerVerdict>(20).fill('success'));
    await vi.advanceTimersByTimeAsync(10_000);
    await attempts(b, ['failure', 'failure', 'failure', 'failure']);
    expect(b.state).toBe('open');
  });
});

describe('open → half-open', () => {
  it('an open breaker lets nothing through until openFor has passed, then half-opens', async () => {
    const { b, changes } = await tripped();
    await vi.advanceTimersByTimeAsync(29_999);
    expect(b.state).toBe('open');
    expect(b.canPass()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state).toBe('half-open');
    expect(changes).toEqual(['open', 'half-open']);
    expect(b.canPass()).toBe(true);
    expect(b.halfOpenAt).toBe(0);
  });

  it('half-open admits exactly halfOpenRequests trial requests', async () => {
    const { b } = await tripped({ halfOpenRequests: 3 });
    await vi.advanceTimersByTimeAsync(30_000);
    b.begin();
    b.begin();
    expect(b.canPass()).toBe(true);
    b.begin();
    expect(b.canPass()).toBe(false);
  });

  it('a trial that ends neutral gives its slot back', async () => {
    const { b } = await tripped({ halfOpenRequests: 1 });
    await vi.advanceTimersByTimeAsync(30_000);
    const trial = b.begin();
    expect(b.canPass()).toBe(false);
    b.end(trial, 'neutral');
    expect(b.canPass()).toBe(true);
    expect(b.state).toBe('half-open');
  });
});

describe('half-open → closed / open', () => {
  it('closes once every trial succeeded, not after the first', async () => {
    const { b, changes } = await tripped();
    await vi.advanceTimersByTimeAsync(30_000);
    const first = b.begin();
    const second = b.begin();
    b.end(first, 'success');
    await settle();
    expect(b.state).toBe('half-open');
    b.end(second, 'success');
    await settle();
    expect(b.state).toBe('closed');
    expect(b.canPass()).toBe(true);
    expect(b.halfOpenAt).toBe(0);
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('one failed trial opens it again for another full openFor', async () => {
    const { b, changes } = await tripped();
    await vi.advanceTimersByTimeAsync(30_000); // half-open at T0 + 30 s
    await vi.advanceTimersByTimeAsync(500);
    const first = b.begin();
    const second = b.begin();
    b.end(first, 'success');
    b.end(second, 'failure');
    await settle();
    expect(b.state).toBe('open');
    expect(b.openedAt).toBe(T0 + 30_500);
    expect(b.halfOpenAt).toBe(T0 + 60_500);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(b.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state).toBe('half-open');
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open']);
  });

  it('trial slots and successes start from zero in every half-open period', async () => {
    const { b } = await tripped();
    await vi.advanceTimersByTimeAsync(30_000);
    b.end(b.begin(), 'success');
    b.end(b.begin(), 'failure'); // reopened, with one success already counted
    await vi.advanceTimersByTimeAsync(30_000);
    expect(b.canPass()).toBe(true);
    b.end(b.begin(), 'success');
    await settle();
    expect(b.state).toBe('half-open'); // one success in this period is not enough
    b.end(b.begin(), 'success');
    await settle();
    expect(b.state).toBe('closed');
  });

  it('a closed breaker starts from an empty window: failures from before it opened are forgotten', async () => {
    // openFor shorter than the window, so the old failures would still be inside it.
    const { b } = await tripped({ openFor: 2_000, window: 10_000 });
    await vi.advanceTimersByTimeAsync(2_000);
    b.end(b.begin(), 'success');
    b.end(b.begin(), 'success');
    await settle();
    expect(b.state).toBe('closed');
    await attempts(b, ['failure', 'failure', 'failure']);
    expect(b.state).toBe('closed');
    await attempt(b, 'failure');
    expect(b.state).toBe('open');
  });
});

describe('late outcomes', () => {
  it('an attempt sent before the breaker opened cannot re-open or close it later', async () => {
    const { b, changes } = breaker();
    const slow = b.begin(); // sent while closed, answers much later
    await attempts(b, ['failure', 'failure', 'failure', 'failure']);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(b.state).toBe('half-open');
    b.end(slow, 'failure');
    await settle();
    expect(b.state).toBe('half-open');
    expect(b.canPass()).toBe(true);
    b.end(slow, 'success');
    await settle();
    expect(b.state).toBe('half-open');
    expect(changes).toEqual(['open', 'half-open']);
  });

  it('a trial from an earlier half-open period does not count in the next one', async () => {
    const { b } = await tripped({ halfOpenRequests: 2 });
    await vi.advanceTimersByTimeAsync(30_000);
    const stale = b.begin();
    b.end(b.begin(), 'failure'); // reopens
    await vi.advanceTimersByTimeAsync(30_000);
    b.end(b.begin(), 'success');
    b.end(stale, 'success'); // from the previous period: ignored
    await settle();
    expect(b.state).toBe('half-open');
  });
});

describe('health probes and shutdown', () => {
  it('closeEarly closes an open breaker at once and no half-open follows', async () => {
    const { b, changes } = await tripped();
    await vi.advanceTimersByTimeAsync(1_000);
    b.closeEarly();
    expect(b.state).toBe('closed');
    expect(b.canPass()).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.state).toBe('closed');
    expect(changes).toEqual(['open', 'closed']);
  });

  it('closeEarly on a closed breaker changes nothing', async () => {
    const { b, changes } = breaker();
    b.closeEarly();
    expect(b.state).toBe('closed');
    expect(changes).toEqual([]);
  });

  it('shutdown leaves no timer behind, even while open', async () => {
    const before = vi.getTimerCount();
    const { b } = await tripped();
    expect(vi.getTimerCount()).toBe(before + 2); // bucket rotation + half-open timer
    b.shutdown();
    expect(vi.getTimerCount()).toBe(before);
  });
});
