// Where and when a request goes again after a failed attempt — or not at all. Always (even with
// `retry: off`): a request the backend never got (connect failures) goes to another backend,
// uncounted. Without a retry block, the safe defaults too: an idempotent request whose connection
// broke goes once more to another backend, within the budget. With a block: what `retry.on`
// allows for the method, within maxRetries, the deadline and the retry budget; a single-backend
// pool retries the same backend after a jittered backoff.

import type { FailureKind } from '../core/failure.js';
import { isReady } from '../balance/select.js';
import { admitRetry, backoffDelay, retryAllowed } from '../resilience/retry.js';
import type { CompiledBackend } from '../snapshot/snapshot.js';
import type { BackendWalk } from './backend-walk.js';

export interface RetryPlan {
  readonly backend: CompiledBackend;
  /** ms to wait first (same backend, single-backend pool); 0 = at once. */
  readonly delay: number;
  /** Counts as a retry (maxRetries, budget); false for the safe failover without a retry block. */
  readonly counted: boolean;
}

/** What the plan reads of the request beyond its walk over the pool. */
export interface RetryCandidate extends BackendWalk {
  readonly retries: number;
  /** Epoch ms bounding all attempts. */
  readonly deadlineAt: number;
  readonly idempotent: boolean;
}

export function planRetry(
  request: RetryCandidate,
  failedOn: CompiledBackend,
  kind: FailureKind,
  status: number,
  now: number,
): RetryPlan | undefined {
  const { upstream } = request;
  const policy = upstream.resilience.retry;
  if (policy === undefined || (policy.implicit && kind === 'connect')) {
    if (kind !== 'connect') return undefined;
    const next = request.pick(now);
    return next && { backend: next, delay: 0, counted: false };
  }
  if (
    request.retries >= policy.maxRetries ||
    !retryAllowed(policy, kind, status, request.idempotent) ||
    (request.deadlineAt !== 0 && now >= request.deadlineAt)
  )
    return undefined;
  let next = request.pick(now);
  let delay = 0;
  if (!next) {
    // The safe defaults never send the request to the backend that just failed it.
    if (policy.implicit || upstream.backends.length !== 1 || !isReady(failedOn, now)) return undefined;
    next = failedOn;
    delay = backoffDelay(policy, request.retries, request.context.random);
    if (request.deadlineAt !== 0 && now + delay >= request.deadlineAt) return undefined;
  }
  // A refused connection cost the backend nothing: only retries it may have seen use the budget.
  if (kind !== 'connect' && !admitRetry(policy, upstream.backends, failedOn)) return undefined;
  return { backend: next, delay, counted: true };
}
