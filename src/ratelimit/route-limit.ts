// Every policy a route applies, checked in order. All must allow the request; when one refuses,
// the tokens already taken from the others are given back, so a refused request costs nothing.
// In queue mode a policy may allow after a wait: the request is held for the longest wait.

import type { IncomingMessage } from 'node:http';
import type { LimiterEvents } from '../core/events.js';
import type { StoreOutcome } from './guarded-store.js';
import { rateLimitHeaders, type PolicyReport } from './headers.js';
import type { ClientIdentity, CompiledPolicy } from './policy.js';

export type LimitVerdict =
  | { readonly kind: 'allow'; readonly waitMs: number; readonly headers: Record<string, string>; refund(): void }
  | { readonly kind: 'limited'; readonly policy: string; readonly retryAfterMs: number; readonly headers: Record<string, string> }
  | { readonly kind: 'missing-key'; readonly policy: string }
  | { readonly kind: 'repeated-key'; readonly policy: string; readonly header: string }
  | { readonly kind: 'unavailable'; readonly policy: string; readonly retryAfterMs: number };

interface Taken {
  policy: CompiledPolicy;
  identity: ClientIdentity;
  /** Where the tokens were taken: they go back to the same store. */
  source: 'store' | 'local';
}

export class RouteRateLimit {
  constructor(readonly policies: readonly CompiledPolicy[]) {}

  get names(): string[] {
    return this.policies.map((policy) => policy.name);
  }

  /** `authIdentity`: what the route's `auth` proved (the `auth` key part). */
  async check(req: IncomingMessage, routeName: string, observer: LimiterEvents, authIdentity?: string): Promise<LimitVerdict> {
    const taken: Taken[] = [];
    const reports: PolicyReport[] = [];
    const results: Array<'allowed' | 'queued' | 'error'> = [];
    let waitMs = 0;
    for (const policy of this.policies) {
      const found = policy.identify(req, routeName, authIdentity);
      const identity = found instanceof Promise ? await found : found;
      if (!identity) {
        refund(taken);
        observer.limiterDecision(policy.name, 'missing-key');
        return { kind: 'missing-key', policy: policy.name };
      }
      if ('repeated' in identity) {
        refund(taken);
        observer.limiterDecision(policy.name, 'missing-key');
        return { kind: 'repeated-key', policy: policy.name, header: identity.repeated };
      }
      const { bucket } = identity;
      const pending = policy.store.take(
        { key: identity.key, capacity: bucket.capacity, refillPerMs: bucket.refillPerMs, cost: bucket.cost, maxWaitMs: policy.maxWaitMs },
        policy.onRedisError,
      );
      const outcome: StoreOutcome = pending instanceof Promise ? await pending : pending;
      if (outcome.source === 'unavailable') {
        refund(taken);
        observer.limiterDecision(policy.name, 'error');
        return { kind: 'unavailable', policy: policy.name, retryAfterMs: outcome.retryAfterMs };
      }
      if (outcome.source === 'open') {
        results.push('error');
        continue;
      }
      const report: PolicyReport = { policy: policy.name, bucket, remaining: outcome.remaining, fullInMs: outcome.fullInMs };
      if (!outcome.allowed) {
        refund(taken);
        observer.limiterDecision(policy.name, 'limited');
        reports.push(report);
        return { kind: 'limited', policy: policy.name, retryAfterMs: outcome.waitMs, headers: rateLimitHeaders(reports, report) };
      }
      taken.push({ policy, identity, source: outcome.source });
      reports.push(report);
      results.push(outcome.waitMs > 0 ? 'queued' : 'allowed');
      if (outcome.waitMs > waitMs) waitMs = outcome.waitMs;
    }
    for (const [index, policy] of this.policies.entries()) observer.limiterDecision(policy.name, results[index]!);
    return { kind: 'allow', waitMs, headers: rateLimitHeaders(reports), refund: () => refund(taken) };
  }
}

/** Gives the tokens back to where they were taken (best effort: a failed refund only leaves the bucket a little emptier). */
function refund(taken: readonly Taken[]): void {
  for (const { policy, identity, source } of taken) {
    const { bucket } = identity;
    try {
      policy.store.refund(
        { key: identity.key, capacity: bucket.capacity, refillPerMs: bucket.refillPerMs, cost: bucket.cost, maxWaitMs: 0 },
        source,
      );
    } catch {
      // best effort
    }
  }
}
