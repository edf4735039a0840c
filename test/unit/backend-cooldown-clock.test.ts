// The cooldown clock of a throttled backend: how long a 429 / hinted 503 keeps it out
// (src/upstream/cooldown.ts, src/upstream/retry-hints.ts) and how its end only ever moves later
// (src/upstream/backend-state.ts). The clock is faked: `now` is always Date.now() of a fixed
// instant, and time moves only when a test moves it.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { throttleCooldown } from '../../src/resilience/cooldown.js';
import { BackendState, BackendStateRegistry, backendId } from '../../src/state/backend-state.js';
import { parseRetryAfter, readRetryHint } from '../../src/resilience/retry-hints.js';
import type { ThrottlePolicy } from '../../src/resilience/cooldown.js';

const T0 = Date.parse('2026-11-23T10:00:00.000Z');

function throttle(overrides: Partial<ThrottlePolicy> = {}): ThrottlePolicy {
  return { statuses: new Set([429, 503]), defaultCooldown: 10_000, minCooldown: 0, maxCooldown: 300_000, ...overrides };
}

/** What the exchange does with a throttling response: decide, then extend the backend's clock. */
function onResponse(state: BackendState, status: number, headers: Record<string, string>, policy = throttle()): boolean {
  const now = Date.now();
  const decision = throttleCooldown(status, headers, policy, now);
  return decision !== undefined && state.coolDownUntil(decision.until, decision.source, decision.value, now);
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('a cooldown end only ever moves later', () => {
  it('a shorter hint while cooling leaves the end and its record untouched', () => {
    const state = new BackendState('llm http://a');
    expect(onResponse(state, 429, { 'retry-after': '5' })).toBe(true);
    vi.advanceTimersByTime(3_000);
    expect(onResponse(state, 429, { 'retry-after': '1' })).toBe(false); // would end at T0 + 4 s
    expect(state.cooldownUntil).toBe(T0 + 5_000);
    expect(state.lastCooldown).toEqual({ until: T0 + 5_000, source: 'retry-after', value: '5', setAt: T0 });
  });

  it('a later end extends it, and the record says when and why', () => {
    const state = new BackendState('llm http://a');
    onResponse(state, 429, { 'retry-after': '5' });
    vi.advanceTimersByTime(4_500);
    expect(onResponse(state, 429, { 'retry-after-ms': '2000' })).toBe(true);
    expect(state.cooldownUntil).toBe(T0 + 6_500);
    expect(state.lastCooldown).toEqual({ until: T0 + 6_500, source: 'retry-after-ms', value: '2000', setAt: T0 + 4_500 });
  });

  it('the same end again does not count as a move', () => {
    const state = new BackendState('llm http://a');
    expect(onResponse(state, 429, { 'retry-after': '5' })).toBe(true);
    expect(onResponse(state, 429, { 'retry-after': '5' })).toBe(false);
    expect(state.cooldownUntil).toBe(T0 + 5_000);
  });

  it('the backend is cooling up to, but not at, the end', () => {
    const state = new BackendState('llm http://a');
    expect(state.isCooling(Date.now())).toBe(false);
    onResponse(state, 429, { 'retry-after-ms': '1500' });
    vi.advanceTimersByTime(1_499);
    expect(state.isCooling(Date.now())).toBe(true);
    vi.advanceTimersByTime(1);
    expect(state.isCooling(Date.now())).toBe(false);
  });

  it('a cooldown that ran out is replaced by a new one, even a shorter one', () => {
    const state = new BackendState('llm http://a');
    onResponse(state, 429, { 'retry-after': '10' });
    vi.advanceTimersByTime(20_000);
    expect(onResponse(state, 429, { 'retry-after': '1' })).toBe(true);
    expect(state.cooldownUntil).toBe(T0 + 21_000);
  });

  it('the clock belongs to the backend id: a reload looking it up again still sees it cooling', () => {
    const registry = new BackendStateRegistry();
    const id = backendId('llm', 'http://a');
    expect(id).toBe('llm http://a');
    onResponse(registry.get(id), 429, { 'retry-after': '30' });
    vi.advanceTimersByTime(10_000);
    const again = registry.get(id);
    expect(again.isCooling(Date.now())).toBe(true);
    expect(again.cooldownUntil).toBe(T0 + 30_000);
    registry.retain(new Set());
    expect(registry.size).toBe(0);
    expect(registry.get(id).cooldownUntil).toBe(0); // a backend removed then re-added starts fresh
  });
});

describe('how long: clamps and the default', () => {
  it('a 429 without a usable hint cools for defaultCooldown, and says so', () => {
    expect(throttleCooldown(429, { 'retry-after': 'later' }, throttle(), T0)).toEqual({
      until: T0 + 10_000,
      delayMs: 10_000,
      source: 'default',
      value: '10000ms',
    });
  });

  it('the default is clamped like any hint', () => {
    expect(throttleCooldown(429, {}, throttle({ defaultCooldown: 500, minCooldown: 2_000 }), T0)).toEqual({
      until: T0 + 2_000,
      delayMs: 2_000,
      source: 'default',
      value: '500ms',
    });
    expect(throttleCooldown(429, {}, throttle({ defaultCooldown: 60_000, maxCooldown: 5_000 }), T0)).toEqual({
      until: T0 + 5_000,
      delayMs: 5_000,
      source: 'default',
      value: '60000ms',
    });
  });

  it('the bounds themselves are kept exactly', () => {
    const policy = throttle({ minCooldown: 1_000, maxCooldown: 60_000 });
    expect(throttleCooldown(429, { 'retry-after': '1' }, policy, T0)?.delayMs).toBe(1_000);
    expect(throttleCooldown(429, { 'retry-after': '60' }, policy, T0)?.delayMs).toBe(60_000);
    expect(throttleCooldown(429, { 'retry-after': '60.001' }, policy, T0)?.delayMs).toBe(60_000);
    expect(throttleCooldown(429, { 'retry-after-ms': '999' }, policy, T0)?.delayMs).toBe(1_000);
  });

  it('a fractional millisecond hint rounds up to whole milliseconds', () => {
    expect(throttleCooldown(429, { 'retry-after-ms': '12.5' }, throttle(), T0)).toEqual({
      until: T0 + 13,
      delayMs: 13,
      source: 'retry-after-ms',
      value: '12.5',
    });
    expect(throttleCooldown(429, { 'retry-after': '0.0001' }, throttle(), T0)?.delayMs).toBe(1);
  });

  it('Retry-After: 0 on a 503 is still throttling (a hint), cooling for minCooldown', () => {
    expect(throttleCooldown(503, { 'retry-after': '0' }, throttle({ minCooldown: 250 }), T0)).toEqual({
      until: T0 + 250,
      delayMs: 250,
      source: 'retry-after',
      value: '0',
    });
  });

  it('a status not in throttle.statuses never cools, even a 429 with a hint', () => {
    expect(throttleCooldown(429, { 'retry-after': '5' }, throttle({ statuses: new Set([503]) }), T0)).toBeUndefined();
  });

  it('an extra throttle status (e.g. 502) with a hint cools; without one it does not', () => {
    const policy = throttle({ statuses: new Set([429, 502, 503]) });
    expect(throttleCooldown(502, { 'retry-after': '3' }, policy, T0)?.delayMs).toBe(3_000);
    expect(throttleCooldown(502, {}, policy, T0)).toBeUndefined();
  });
});

describe('reading the hint', () => {
  it('Retry-After as delay-seconds is relative to now', () => {
    expect(readRetryHint({ 'retry-after': '120' }, T0)).toEqual({ delayMs: 120_000, source: 'retry-after', value: '120' });
  });

  it('Retry-After as an HTTP-date is the time left until that date on the current clock', () => {
    const date = 'Mon, 23 Nov 2026 10:00:30 GMT';
    expect(throttleCooldown(429, { 'retry-after': date }, throttle(), Date.now())?.delayMs).toBe(30_000);
    vi.advanceTimersByTime(10_500);
    expect(throttleCooldown(429, { 'retry-after': date }, throttle(), Date.now())).toMatchObject({ delayMs: 19_500, until: T0 + 30_000 });
    vi.advanceTimersByTime(60_000);
    // Past: no wait left, clamped up to minCooldown.
    expect(throttleCooldown(429, { 'retry-after': date }, throttle({ minCooldown: 100 }), Date.now())?.delayMs).toBe(100);
  });

  it('an HTTP-date with a numeric offset is honoured', () => {
    expect(parseRetryAfter('Mon, 23 Nov 2026 11:00:30 +0100', T0)).toBe(30_000);
  });

  it('an ISO timestamp is not an HTTP-date and counts as absent', () => {
    expect(readRetryHint({ 'retry-after': '2026-11-23T10:00:30Z' }, T0)).toBeUndefined();
  });

  it('an overlong value is not parsed as a date', () => {
    expect(parseRetryAfter(`Mon, 23 Nov 2026 10:00:30 GMT${' '.repeat(40)}`, T0)).toBeUndefined();
  });

  it('retry-after-ms wins over x-ms-retry-after-ms, which wins over Retry-After', () => {
    expect(readRetryHint({ 'retry-after': '9', 'x-ms-retry-after-ms': '700', 'retry-after-ms': '300' }, T0)).toEqual({
      delayMs: 300,
      source: 'retry-after-ms',
      value: '300',
    });
    expect(readRetryHint({ 'retry-after': '9', 'x-ms-retry-after-ms': '700' }, T0)).toEqual({
      delayMs: 700,
      source: 'x-ms-retry-after-ms',
      value: '700',
    });
  });

  it('millisecond headers take no dates or units: a malformed one falls through to Retry-After', () => {
    const date = 'Mon, 23 Nov 2026 10:00:30 GMT';
    expect(readRetryHint({ 'retry-after-ms': date, 'retry-after': '4' }, T0)?.delayMs).toBe(4_000);
    expect(readRetryHint({ 'x-ms-retry-after-ms': '250ms', 'retry-after': '4' }, T0)?.delayMs).toBe(4_000);
  });

  it('Retry-After (even a whole second) wins over larger RateLimit resets', () => {
    expect(readRetryHint({ 'retry-after': '1', 'ratelimit-reset': '60', 'x-ratelimit-reset-tokens': '5m0s' }, T0)).toEqual({
      delayMs: 1_000,
      source: 'retry-after',
      value: '1',
    });
  });

  it('of repeated header lines, the first is used', () => {
    expect(readRetryHint({ 'retry-after': ['5', '10'] } as never, T0)?.delayMs).toBe(5_000);
  });

  // RFC 9110 §5.6.7: recipients must accept the obsolete asctime form, and every HTTP-date is UTC.
  it("an asctime Retry-After is read as UTC whatever the gateway host's time zone", () => {
    const saved = process.env.TZ;
    try {
      for (const zone of ['UTC', 'America/New_York', 'Asia/Tokyo']) {
        process.env.TZ = zone;
        expect(readRetryHint({ 'retry-after': 'Mon Nov 23 10:00:20 2026' }, T0)?.delayMs, zone).toBe(20_000);
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
