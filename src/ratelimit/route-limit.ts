// Every policy a route applies, checked in order. All must allow the request; when one refuses,
// the tokens already taken from the others are given back, so a refused request costs nothing.
// In queue mode a policy may allow after a wait: the request is held for the longest wait.
//
// A policy takes, in order: a slot of its maxInFlight (a bucket of `maxInFlight` slots that refill
// over the lease, so a slot never given back returns by itself), its bucket (`cost`, or for
// `unit: tokens` the request's token estimate), then its calendar quota. An allowed request gets a
// Reservation: settled once with what the request really used (token policies charge or give back
// the difference; in-flight slots go back), or refunded whole when the request never went out.

import type { IncomingMessage } from 'node:http';
import type { LimiterEvents } from '../core/events.js';
import type { TakeRequest } from './bucket.js';
import type { StoreOutcome } from './guarded-store.js';
import { rateLimitHeaders, type PolicyReport } from './headers.js';
import type { CompiledPolicy } from './policy.js';
import { periodWindow } from './quota-period.js';
import { Reservation, type Taken } from './reservation.js';

export { Reservation };

export type LimitVerdict =
  | {
      readonly kind: 'allow';
      readonly waitMs: number;
      readonly headers: Record<string, string>;
      readonly reservation: Reservation;
      refund(): void;
    }
  | { readonly kind: 'limited'; readonly policy: string; readonly retryAfterMs: number; readonly headers: Record<string, string> }
  | { readonly kind: 'quota'; readonly policy: string; readonly retryAfterMs: number; readonly headers: Record<string, string> }
  | { readonly kind: 'missing-key'; readonly policy: string }
  | { readonly kind: 'repeated-key'; readonly policy: string; readonly header: string }
  | { readonly kind: 'unavailable'; readonly policy: string; readonly retryAfterMs: number };

/** What a check may know of the request beyond its headers. */
export interface LimitContext {
  /** What the route's `auth` proved (the `auth` key part). */
  readonly authIdentity?: string | undefined;
  /** The request's LLM token estimate (asked only when a policy counts tokens). */
  readonly tokens?: (() => number) | undefined;
  /** How long an unsettled reservation may live (the request deadline); default 10 minutes. */
  readonly leaseMs?: number | undefined;
}

const DEFAULT_LEASE_MS = 600_000;

/** A refusal: the tokens already taken from the route's other policies go back first. */
function refused<V>(taken: readonly Taken[], verdict: V): V {
  if (taken.length > 0) Reservation.refundAll(taken);
  return verdict;
}

export class RouteRateLimit {
  /** True when a policy counts LLM tokens: the body is read before the check. */
  readonly countsTokens: boolean;

  constructor(readonly policies: readonly CompiledPolicy[]) {
    this.countsTokens = policies.some((policy) => policy.unit === 'tokens');
  }

  get names(): string[] {
    return this.policies.map((policy) => policy.name);
  }

  async check(
    req: IncomingMessage,
    routeName: string,
    observer: LimiterEvents,
    context: string | LimitContext | undefined = {},
  ): Promise<LimitVerdict> {
    const {
      authIdentity,
      tokens,
      leaseMs = DEFAULT_LEASE_MS,
    } = typeof context === 'string' || context === undefined ? { authIdentity: context } : context;
    const lease = leaseMs > 0 && Number.isFinite(leaseMs) ? leaseMs : DEFAULT_LEASE_MS;
    const taken: Taken[] = [];
    const reports: PolicyReport[] = [];
    const results: Array<'allowed' | 'queued' | 'error'> = [];
    let waitMs = 0;
    let estimate: number | undefined;
    for (const policy of this.policies) {
      const found = policy.identify(req, routeName, authIdentity);
      const identity = found instanceof Promise ? await found : found;
      if (!identity) {
        observer.limiterDecision(policy.name, 'missing-key');
        return refused(taken, { kind: 'missing-key', policy: policy.name });
      }
      if ('repeated' in identity) {
        observer.limiterDecision(policy.name, 'missing-key');
        return refused(taken, { kind: 'repeated-key', policy: policy.name, header: identity.repeated });
      }
      const { bucket } = identity;
      const countsTokens = policy.unit === 'tokens';

      if (policy.maxInFlight !== undefined) {
        const slots = policy.maxInFlight;
        const request: TakeRequest = {
          key: `${identity.key}\u0001f`,
          capacity: slots,
          refillPerMs: slots / lease,
          cost: 1,
          maxWaitMs: 0,
        };
        const pending = policy.store.take(request, policy.onRedisError);
        const outcome = pending instanceof Promise ? await pending : pending;
        if (outcome.source === 'unavailable') {
          observer.limiterDecision(policy.name, 'error');
          return refused(taken, { kind: 'unavailable', policy: policy.name, retryAfterMs: outcome.retryAfterMs });
        }
        if (outcome.source !== 'open') {
          if (!outcome.allowed) {
            observer.limiterDecision(policy.name, 'limited');
            return refused(taken, { kind: 'limited', policy: policy.name, retryAfterMs: 1000, headers: rateLimitHeaders(reports) });
          }
          taken.push({ policy, request, source: outcome.source, role: 'in-flight' });
        }
      }

      const cost = countsTokens && tokens ? (estimate ??= tokens()) : bucket.cost;
      const request: TakeRequest = {
        key: identity.key,
        capacity: bucket.capacity,
        refillPerMs: bucket.refillPerMs,
        cost,
        maxWaitMs: policy.maxWaitMs,
      };
      const pending = policy.store.take(request, policy.onRedisError);
      const outcome = pending instanceof Promise ? await pending : pending;
      if (outcome.source === 'unavailable') {
        observer.limiterDecision(policy.name, 'error');
        return refused(taken, { kind: 'unavailable', policy: policy.name, retryAfterMs: outcome.retryAfterMs });
      }
      if (outcome.source === 'open') {
        results.push('error');
        continue;
      }
      const report: PolicyReport = {
        policy: policy.name,
        kind: countsTokens ? 'tokens' : undefined,
        bucket,
        remaining: outcome.remaining,
        fullInMs: outcome.fullInMs,
      };
      if (!outcome.allowed) {
        observer.limiterDecision(policy.name, 'limited');
        reports.push(report);
        // A request larger than the whole bucket can never pass: it is told when the bucket is full.
        const retryAfterMs = cost > bucket.capacity ? outcome.fullInMs : outcome.waitMs;
        return refused(taken, { kind: 'limited', policy: policy.name, retryAfterMs, headers: rateLimitHeaders(reports, report) });
      }
      taken.push({ policy, request, source: outcome.source, role: countsTokens ? 'tokens' : 'requests' });
      reports.push(report);

      if (policy.quota !== undefined) {
        const period = periodWindow(policy.quota.period, Date.now());
        const quotaRequest: TakeRequest = {
          key: `${identity.key}\u0001q${period.id}`,
          capacity: policy.quota.limit,
          refillPerMs: 0,
          cost,
          maxWaitMs: 0,
          windowMs: period.endsInMs,
        };
        const pendingQuota = policy.store.take(quotaRequest, policy.onRedisError);
        const quota = pendingQuota instanceof Promise ? await pendingQuota : pendingQuota;
        if (quota.source === 'unavailable') {
          observer.limiterDecision(policy.name, 'error');
          return refused(taken, { kind: 'unavailable', policy: policy.name, retryAfterMs: quota.retryAfterMs });
        }
        if (quota.source !== 'open') {
          const quotaReport: PolicyReport = {
            policy: `${policy.name}-quota`,
            kind: 'quota',
            bucket: { policyField: policy.quota.policyField, limitField: String(policy.quota.limit) },
            remaining: quota.remaining,
            fullInMs: quota.fullInMs,
          };
          reports.push(quotaReport);
          if (!quota.allowed) {
            observer.limiterDecision(policy.name, 'limited');
            return refused(taken, {
              kind: 'quota',
              policy: policy.name,
              retryAfterMs: period.endsInMs,
              headers: rateLimitHeaders(reports),
            });
          }
          taken.push({ policy, request: quotaRequest, source: quota.source, role: countsTokens ? 'tokens' : 'requests' });
        }
      }
      results.push(outcome.waitMs > 0 ? 'queued' : 'allowed');
      if (outcome.waitMs > waitMs) waitMs = outcome.waitMs;
    }
    for (let i = 0; i < this.policies.length; i++) observer.limiterDecision(this.policies[i]!.name, results[i]!);
    const reservation = new Reservation(taken, estimate, lease);
    return { kind: 'allow', waitMs, headers: rateLimitHeaders(reports), reservation, refund: () => reservation.refund() };
  }
}
