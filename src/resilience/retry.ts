// Retry rules: what may be sent again, how long a same-backend retry waits, and the retry budget
// that stops retry storms: Envoy's (retries in flight ≤ budget × requests in flight, with a small
// floor so a quiet upstream can still retry), plus retry tokens that a backend earns while it
// answers. When a backend dies under load, every request in flight on it fails in the same
// millisecond — far more than budget × in flight — and the tokens it saved pay for that burst.
// Tokens are earned only by answers, so a backend that keeps failing gets the budget alone.

import type { FailureKind } from '../core/failure.js';
import type { RetryPolicy } from './policy.js';

/** RFC 9110 §9.2.2 idempotent methods. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * May this request be sent again after its backend may have received it? The idempotent
 * methods always; any other only when the route says its backends deduplicate by the
 * idempotency key (`keyHeader`, lower case) and the request carries one.
 */
export function isIdempotent(method: string, headers: Record<string, string | string[]>, keyHeader?: string): boolean {
  return IDEMPOTENT.has(method) || (keyHeader !== undefined && headers[keyHeader] !== undefined);
}

/** May this failure be retried under `policy` (before budget, deadline and backend checks)? */
export function retryAllowed(policy: RetryPolicy, kind: FailureKind, status: number, idempotent: boolean): boolean {
  switch (kind) {
    case 'connect':
      return policy.connectError;
    case 'reset':
      return policy.connectError && idempotent;
    case 'timeout':
      return policy.timeout && idempotent;
    case 'status':
      return idempotent && policy.statuses.has(status);
    default:
      return false;
  }
}

/** Exponential backoff with full jitter for retry number `retry` (0-based). */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.backoffMax, policy.backoffBase * 2 ** retry);
  return Math.round(random() * ceiling);
}

/** What the budget reads of each backend of the pool. */
export interface BudgetedBackend {
  readonly state: { readonly inFlight: number; readonly retriesInFlight: number; retryTokens: number };
}

/** An answer from this backend earns it `budget` of a retry token, up to `burst`. */
export function earnRetryToken(policy: RetryPolicy, backend: BudgetedBackend): void {
  const { state } = backend;
  if (state.retryTokens < policy.burst) state.retryTokens = Math.min(policy.burst, state.retryTokens + policy.budget);
}

/**
 * May one more retry of a request that failed on `failedOn` start now? Within the in-flight
 * budget; else by spending one of the tokens `failedOn` earned (false when it has none).
 */
export function admitRetry(policy: RetryPolicy, backends: readonly BudgetedBackend[], failedOn: BudgetedBackend): boolean {
  if (budgetAllows(policy, backends)) return true;
  const { state } = failedOn;
  if (state.retryTokens < 1) return false;
  state.retryTokens--;
  return true;
}

/** Envoy retry budget: retries in flight may be at most budget × requests in flight (at least minRetries). */
export function budgetAllows(policy: RetryPolicy, backends: readonly BudgetedBackend[]): boolean {
  let inFlight = 0;
  let retries = 0;
  for (const backend of backends) {
    inFlight += backend.state.inFlight;
    retries += backend.state.retriesInFlight;
  }
  // One more retry must fit: retries + 1 ≤ the allowance (a hair of tolerance for float noise,
  // so 7% of 100 allows 7, not 8).
  return retries + 1 <= Math.max(policy.minRetries, policy.budget * inFlight) + 1e-9;
}
