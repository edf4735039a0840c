// The capacity learner: announced budgets counted down as requests go out, the lower figure of
// one window kept, blocked until the announced reset, declared rpm/tpm per minute, lowWater share.

import { describe, expect, it } from 'vitest';
import { readCapacity } from '../../src/resilience/capacity-headers.js';
import { BackendCapacity } from '../../src/state/backend-capacity.js';

const T0 = 1_000_000;

describe('readCapacity', () => {
  it('reads OpenAI headers (Go durations) and the IETF RateLimit field; malformed values are absent', () => {
    expect(
      readCapacity({
        'x-ratelimit-remaining-requests': '3',
        'x-ratelimit-reset-requests': '6m0s',
        'x-ratelimit-limit-requests': '10',
        'x-ratelimit-remaining-tokens': '900',
        'x-ratelimit-reset-tokens': '250ms',
      }),
    ).toEqual({ requests: { remaining: 3, resetMs: 360_000, limit: 10 }, tokens: { remaining: 900, resetMs: 250, limit: undefined } });
    expect(readCapacity({ ratelimit: '"requests";r=0;t=2, "tokens";r=50;t=1' })).toEqual({
      requests: { remaining: 0, resetMs: 2000, limit: undefined },
      tokens: { remaining: 50, resetMs: 1000, limit: undefined },
    });
    expect(readCapacity({ 'x-ratelimit-remaining-requests': 'lots' })).toBeUndefined();
    expect(readCapacity({ 'content-type': 'application/json' })).toBeUndefined();
  });
});

describe('BackendCapacity', () => {
  it('blocks when the announced remaining, counted down by what was sent since, reaches 0 — until the reset', () => {
    const c = new BackendCapacity();
    c.observe({ requests: { remaining: 2, resetMs: 500, limit: 10 }, tokens: undefined }, T0, 0);
    expect(c.blockedUntil(T0, 0)).toBeUndefined();
    c.sent(0, T0 + 1);
    expect(c.blockedUntil(T0 + 1, 0)).toBeUndefined();
    c.sent(0, T0 + 2);
    expect(c.blockedUntil(T0 + 2, 0)).toEqual({ until: T0 + 500, source: 'x-ratelimit-remaining-requests', value: '0' });
    expect(c.blockedUntil(T0 + 500, 0)).toBeUndefined();
  });

  it('counts requests in flight against the announced figure, and keeps the lower figure within a window', () => {
    const c = new BackendCapacity();
    c.observe({ requests: { remaining: 5, resetMs: 1000, limit: 10 }, tokens: undefined }, T0, 4);
    expect(c.requestBudget!.remaining).toBe(1);
    // A late answer of the same window says 3: the lower count (1) stands.
    c.observe({ requests: { remaining: 3, resetMs: 990, limit: 10 }, tokens: undefined }, T0 + 10, 0);
    expect(c.requestBudget!.remaining).toBe(1);
    // The next window: its own figure.
    c.observe({ requests: { remaining: 9, resetMs: 1000, limit: 10 }, tokens: undefined }, T0 + 1000, 0);
    expect(c.requestBudget!.remaining).toBe(9);
  });

  it("blocks when remaining tokens are below the request's estimate, not for a smaller one", () => {
    const c = new BackendCapacity();
    c.observe({ requests: undefined, tokens: { remaining: 100, resetMs: 2000, limit: 1000 } }, T0, 0);
    expect(c.blockedUntil(T0, 80)).toBeUndefined();
    expect(c.blockedUntil(T0, 120)?.source).toBe('x-ratelimit-remaining-tokens');
    c.sent(80, T0);
    expect(c.blockedUntil(T0, 30)?.until).toBe(T0 + 2000);
  });

  it('never steers by a remaining count that came without a reset', () => {
    const c = new BackendCapacity();
    c.observe({ requests: { remaining: 0, resetMs: undefined, limit: undefined }, tokens: undefined }, T0, 0);
    expect(c.blockedUntil(T0, 0)).toBeUndefined();
  });

  it('declared rpm and tpm are counted per fixed minute', () => {
    const c = new BackendCapacity();
    c.declared = { rpm: 2, tpm: 100 };
    const minute = 60_000 * 100;
    c.sent(40, minute + 1);
    expect(c.blockedUntil(minute + 2, 40)).toBeUndefined();
    expect(c.blockedUntil(minute + 2, 70)).toEqual({ until: minute + 60_000, source: 'tpm', value: '100' });
    c.sent(10, minute + 3);
    expect(c.blockedUntil(minute + 4, 1)).toEqual({ until: minute + 60_000, source: 'rpm', value: '2' });
    expect(c.blockedUntil(minute + 60_000, 1)).toBeUndefined();
  });

  it('lowWater: the share falls with the remaining below lowWater × limit, never under 5%', () => {
    const c = new BackendCapacity();
    c.observe({ requests: { remaining: 50, resetMs: 1000, limit: 100 }, tokens: undefined }, T0, 0);
    expect(c.share(T0, 0.1)).toBe(1);
    c.observe({ requests: { remaining: 5, resetMs: 1000, limit: 100 }, tokens: undefined }, T0, 0);
    expect(c.share(T0, 0.1)).toBeCloseTo(0.5);
    c.observe({ requests: { remaining: 0, resetMs: 1000, limit: 100 }, tokens: undefined }, T0, 0);
    expect(c.share(T0, 0.1)).toBe(0.05);
    expect(c.share(T0 + 1000, 0.1)).toBe(1);
  });
});
