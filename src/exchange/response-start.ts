// What an attempt's status line and headers decide, before any byte reaches the client: a throttle
// answer (429, or 503 with a retry hint) cools its backend down and the request goes straight to the
// next one — no sleep; any other answer settles the breaker and may be retried (retry-plan.ts).

import type { FailureKind } from '../core/failure.js';
import { throttleCooldown } from '../resilience/cooldown.js';
import { earnRetryToken } from '../resilience/retry.js';
import type { CompiledBackend } from '../snapshot/snapshot.js';
import type { Attempt } from './attempt.js';
import { anyReadyButSpent, type BackendWalk } from './backend-walk.js';
import type { ForwardRequest } from './forward-request.js';
import { releaseHeld } from './hold-release.js';
import { learnCapacity } from './steering.js';

/** What the decision needs of the exchange the attempt belongs to. */
export interface ResponseStartOwner extends BackendWalk {
  readonly forward: ForwardRequest;
  readonly clientGone: boolean;
  dispatchTo(backend: CompiledBackend, isRetry: boolean): void;
  noBackend(now: number): void;
  retryAfterFailure(attempt: Attempt, kind: FailureKind, status: number, reason: string): boolean;
}

/**
 * Reads an attempt's status line and headers. True: the request went on elsewhere (another backend, a
 * wait, a retry) and this answer is dropped; false: this answer is the one the client gets.
 */
export function wentOnElsewhere(
  owner: ResponseStartOwner,
  attempt: Attempt,
  status: number,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  const { backend } = attempt;
  const { upstream } = owner;
  const now = Date.now();
  learnCapacity(upstream, backend, headers, now);
  const decision = throttleCooldown(status, headers, upstream.throttle, now);
  if (decision) {
    backend.state.capacity.throttled(headers);
    attempt.settle('neutral');
    const extended = owner.coolDown(backend, decision, now);
    attempt.trace?.cooldown(decision, extended);
    attempt.report('throttled', status);
    if (owner.forward.replayable && !owner.clientGone) {
      const next = owner.pick(now);
      if (next) {
        attempt.discard();
        owner.dispatchTo(next, false);
        return true;
      }
      if (!owner.anyReady(now) || (upstream.hold !== undefined && anyReadyButSpent(upstream, now))) {
        attempt.discard();
        owner.noBackend(now);
        return true;
      }
    }
    if (!owner.clientGone) owner.context.observer.throttlePassedThrough(upstream, backend, status);
    return false;
  }
  backend.state.capacity.accepted(headers);
  if (upstream.hold !== undefined && upstream.hold.queue.size > 0) releaseHeld(upstream, now);
  const breaker = backend.state.breaker;
  const failed = breaker?.policy.statuses.has(status);
  attempt.settle(failed ? 'failure' : 'success');
  const retry = upstream.resilience.retry;
  const retryable = retry?.statuses.has(status);
  attempt.report(failed || retryable ? 'error' : 'ok', status);
  if (retry !== undefined && !failed && !retryable) earnRetryToken(retry, backend);
  return retryable === true && owner.retryAfterFailure(attempt, 'status', status, `status ${status}`);
}
