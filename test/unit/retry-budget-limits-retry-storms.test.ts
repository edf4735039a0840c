// The retry budget (src/resilience/retry.ts): retries in flight on an upstream may be at most
// `budget` × its requests in flight, with `minRetries` always allowed (docs/resilience.md).
// budgetAllows() answers "may one more retry start now?" from the live counters of every backend.

import { describe, expect, it } from 'vitest';
import { classifyFailure } from '../../src/core/failure.js';
import { admitRetry, backoffDelay, budgetAllows, earnRetryToken, isIdempotent, retryAllowed } from '../../src/resilience/retry.js';
import type { RetryPolicy } from '../../src/resilience/policy.js';
import { BackendState } from '../../src/state/backend-state.js';
import type { SelectableBackend } from '../../src/balance/select.js';

function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    implicit: false,
    connectError: true,
    timeout: true,
    statuses: new Set([502, 503, 504]),
    maxRetries: 2,
    budget: 0.2,
    minRetries: 3,
    burst: 0,
    deadline: 10_000,
    backoffBase: 50,
    backoffMax: 1_000,
    ...overrides,
  };
}

function pool(count: number): SelectableBackend[] {
  return Array.from({ length: count }, (_, index) => ({ index, priority: 0, weight: 1, state: new BackendState(`up http://b${index}`) }));
}

/** Sets the live counters: [requests in flight, of which retries] per backend. */
function load(backends: SelectableBackend[], counters: Array<[inFlight: number, retries: number]>): SelectableBackend[] {
  counters.forEach(([inFlight, retries], i) => {
    backends[i]!.state.inFlight = inFlight;
    backends[i]!.state.retriesInFlight = retries;
  });
  return backends;
}

/** Starts retries one by one while the budget allows; returns how many started. */
function retriesThatStart(policy: RetryPolicy, backends: SelectableBackend[], target = 0): number {
  let started = 0;
  while (budgetAllows(policy, backends) && started < 10_000) {
    backends[target]!.state.retriesInFlight++;
    backends[target]!.state.inFlight++;
    backends[target]!.state.inFlight--; // the failed attempt's slot is handed to its retry
    started++;
  }
  return started;
}

describe('retry budget', () => {
  it('a quiet upstream can always run minRetries retries at once', () => {
    const backends = load(pool(2), [
      [0, 0],
      [0, 0],
    ]);
    expect(retriesThatStart(retryPolicy({ minRetries: 3 }), backends)).toBe(3);
  });

  it('under load, budget × requests in flight retries may run, no more', () => {
    const backends = load(pool(1), [[100, 0]]);
    expect(retriesThatStart(retryPolicy({ budget: 0.2, minRetries: 3 }), backends)).toBe(20);
    expect(budgetAllows(retryPolicy(), load(pool(1), [[100, 19]]))).toBe(true);
    expect(budgetAllows(retryPolicy(), load(pool(1), [[100, 20]]))).toBe(false);
  });

  it('the floor wins when budget × in flight is below minRetries', () => {
    // 10 in flight × 20 % = 2 retries, but minRetries is 3.
    expect(retriesThatStart(retryPolicy({ budget: 0.2, minRetries: 3 }), load(pool(1), [[10, 0]]))).toBe(3);
  });

  it('counts requests and retries across every backend of the upstream', () => {
    const policy = retryPolicy({ budget: 0.25, minRetries: 0 });
    // 40 in flight over three backends → 10 retries; 9 already run, on two of them.
    expect(
      budgetAllows(
        policy,
        load(pool(3), [
          [20, 5],
          [10, 4],
          [10, 0],
        ]),
      ),
    ).toBe(true);
    expect(
      budgetAllows(
        policy,
        load(pool(3), [
          [20, 5],
          [10, 4],
          [10, 1],
        ]),
      ),
    ).toBe(false);
  });

  it('budget 0 % with minRetries 0 never retries; 100 % lets every request retry once', () => {
    expect(budgetAllows(retryPolicy({ budget: 0, minRetries: 0 }), load(pool(1), [[0, 0]]))).toBe(false);
    expect(budgetAllows(retryPolicy({ budget: 0, minRetries: 0 }), load(pool(1), [[1_000, 0]]))).toBe(false);
    expect(budgetAllows(retryPolicy({ budget: 1, minRetries: 0 }), load(pool(1), [[12, 11]]))).toBe(true);
    expect(budgetAllows(retryPolicy({ budget: 1, minRetries: 0 }), load(pool(1), [[12, 12]]))).toBe(false);
  });

  it('over time: the budget follows the load, and retries that end make room again', () => {
    const policy = retryPolicy({ budget: 0.2, minRetries: 2 });
    const backends = pool(1);
    const state = backends[0]!.state;
    // A burst of 50 requests, all failing: 10 of them may retry.
    state.inFlight = 50;
    expect(retriesThatStart(policy, backends)).toBe(10);
    // The 40 without a retry give up and leave: 10 in flight, all retries. The floor (2) is far below.
    state.inFlight = 10;
    expect(budgetAllows(policy, backends)).toBe(false);
    // Retries end one by one; each one ending does not free a slot until below the floor.
    for (let left = 9; left >= 2; left--) {
      state.retriesInFlight--;
      state.inFlight--;
      expect(budgetAllows(policy, backends), `${left} retries left`).toBe(false);
    }
    state.retriesInFlight--;
    state.inFlight--;
    expect([state.inFlight, state.retriesInFlight]).toEqual([1, 1]);
    expect(budgetAllows(policy, backends)).toBe(true);
  });

  // docs/resilience.md: retries in flight ≤ budget × requests in flight (at least minRetries).
  it('never lets retries in flight exceed budget × requests in flight when that is not a whole number', () => {
    const policy = retryPolicy({ budget: 0.2, minRetries: 0 });
    // 12 in flight × 20 % = 2.4: with 2 running, a third would make 3 > 2.4.
    expect(budgetAllows(policy, load(pool(1), [[12, 2]]))).toBe(false);
  });

  it('a 7 % budget of 100 requests in flight allows 7 retries, not 8 (no float noise)', () => {
    const policy = retryPolicy({ budget: 7 / 100, minRetries: 0 });
    expect(budgetAllows(policy, load(pool(1), [[100, 6]]))).toBe(true);
    expect(budgetAllows(policy, load(pool(1), [[100, 7]]))).toBe(false);
  });
});

/**
 * Backend 0 dies with `dying` requests in flight while backend 1 serves `healthy`: the failures
 * arrive one after another in the same millisecond, each freeing its slot and asking for a retry
 * on backend 1. Returns how many retries were admitted.
 */
function dyingBackendBurst(policy: RetryPolicy, backends: SelectableBackend[], dying: number, healthy: number): number {
  const [dead, alive] = [backends[0]!.state, backends[1]!.state];
  dead.inFlight = dying;
  alive.inFlight = healthy;
  let admitted = 0;
  for (let i = 0; i < dying; i++) {
    dead.inFlight--;
    if (admitRetry(policy, backends, backends[0]!)) {
      alive.inFlight++;
      alive.retriesInFlight++;
      admitted++;
    }
  }
  return admitted;
}

describe('retry budget and a backend dying under load', () => {
  it('confirmed: the in-flight budget alone refuses most of the burst of a backend that dies under load', () => {
    // 20 % of ~20 in flight is ~4: only 3 of the 10 requests cut at once get a retry, 7 fail to the client.
    const admitted = dyingBackendBurst(retryPolicy({ budget: 0.2, minRetries: 3, burst: 0 }), pool(2), 10, 10);
    expect(admitted).toBeLessThan(10);
    expect(admitted).toBe(3);
  });

  it('retry tokens the backend earned while answering pay for the whole burst', () => {
    const policy = retryPolicy({ budget: 0.2, minRetries: 3, burst: 100 });
    const backends = pool(2);
    for (let i = 0; i < 1_000; i++) earnRetryToken(policy, backends[0]!);
    expect(backends[0]!.state.retryTokens).toBe(100); // capped at burst
    expect(dyingBackendBurst(policy, backends, 50, 10)).toBe(50);
    expect(backends[0]!.state.retryTokens).toBeGreaterThan(50);
  });

  it('a fresh backend has no tokens, and tokens are earned at `budget` per answer', () => {
    const policy = retryPolicy({ budget: 0.2, burst: 100 });
    const backends = pool(2);
    for (let i = 0; i < 25; i++) earnRetryToken(policy, backends[0]!);
    expect(backends[0]!.state.retryTokens).toBeCloseTo(5, 9);
  });

  it('a sustained failure earns nothing: once the saved tokens are spent, the in-flight budget alone decides', () => {
    const policy = retryPolicy({ budget: 0.2, minRetries: 3, burst: 20 });
    const backends = pool(2);
    for (let i = 0; i < 200; i++) earnRetryToken(policy, backends[0]!);
    // first burst: 20 tokens + the budget
    expect(dyingBackendBurst(policy, backends, 40, 10)).toBeGreaterThanOrEqual(20);
    // every later burst of failures (the backend keeps failing, answers nothing) gets the budget only
    for (let round = 0; round < 5; round++) {
      backends[1]!.state.inFlight = 0;
      backends[1]!.state.retriesInFlight = 0;
      expect(dyingBackendBurst(policy, backends, 40, 10)).toBeLessThanOrEqual(Math.ceil(0.2 * 50));
    }
    expect(backends[0]!.state.retryTokens).toBeLessThan(1);
  });
});

describe('backoff for same-backend retries', () => {
  it('full jitter under a ceiling of base · 2^n, capped at max', () => {
    const policy = retryPolicy({ backoffBase: 50, backoffMax: 1_000 });
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(policy, n, () => 1))).toEqual([50, 100, 200, 400, 800, 1_000, 1_000]);
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(200);
    expect(backoffDelay(policy, 0, () => 0.123)).toBe(6); // 6.15 rounded
  });
});

describe('what may be retried at all', () => {
  it.each([
    ['ECONNREFUSED', 'connect'],
    ['ENOTFOUND', 'connect'],
    ['UND_ERR_CONNECT_TIMEOUT', 'connect'],
    ['ECONNRESET', 'reset'],
    ['UND_ERR_SOCKET', 'reset'],
    ['UND_ERR_CLOSED', 'connect'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'connect'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'connect'],
    ['UND_ERR_BODY_TIMEOUT', 'other'],
    [undefined, 'other'],
  ])('error code %s is a %s failure', (code, kind) => {
    expect(classifyFailure({ code }).kind).toBe(kind);
  });

  it('a refused connection is retried even for POST; a reset, a timeout or a status only when idempotent', () => {
    const policy = retryPolicy();
    expect(retryAllowed(policy, 'connect', 0, false)).toBe(true);
    expect(retryAllowed(policy, 'reset', 0, false)).toBe(false);
    expect(retryAllowed(policy, 'reset', 0, true)).toBe(true);
    expect(retryAllowed(policy, 'timeout', 0, false)).toBe(false);
    expect(retryAllowed(policy, 'timeout', 0, true)).toBe(true);
    expect(retryAllowed(policy, 'status', 503, true)).toBe(true);
    expect(retryAllowed(policy, 'status', 500, true)).toBe(false);
    expect(retryAllowed(policy, 'status', 503, false)).toBe(false);
    expect(retryAllowed(policy, 'other', 0, true)).toBe(false);
  });

  it('switched-off kinds are never retried', () => {
    const policy = retryPolicy({ connectError: false, timeout: false });
    expect(retryAllowed(policy, 'connect', 0, true)).toBe(false);
    expect(retryAllowed(policy, 'reset', 0, true)).toBe(false);
    expect(retryAllowed(policy, 'timeout', 0, true)).toBe(false);
  });

  it('idempotent: GET HEAD OPTIONS PUT DELETE TRACE; a keyed POST only where the route says its backends deduplicate', () => {
    expect(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'POST', 'PATCH'].map((m) => isIdempotent(m, {}))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(isIdempotent('POST', { 'idempotency-key': 'k-1' })).toBe(false);
    expect(isIdempotent('POST', { 'idempotency-key': 'k-1' }, 'idempotency-key')).toBe(true);
    expect(isIdempotent('PATCH', {}, 'idempotency-key')).toBe(false);
  });
});
