// Retry rules: what may be sent again, how long a same-backend retry waits, and the Envoy-style
// retry budget that stops retry storms (retries in flight ≤ budget × requests in flight, with a
// small floor so a quiet upstream can still retry).

import type { FailureKind } from '../core/failure.js';
import type { RetryPolicy } from './policy.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export function isIdempotent(method: string, headers: Record<string, string | string[]>): boolean {
  return IDEMPOTENT.has(method) || headers['idempotency-key'] !== undefined;
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

/** Envoy retry budget: retries in flight may be at most budget × requests in flight (at least minRetries). */
/** What the budget reads of each backend of the pool. */
export interface BudgetedBackend {
  readonly state: { readonly inFlight: number; readonly retriesInFlight: number };
}

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
