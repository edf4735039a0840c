// The Redis store behind its breaker, with the onRedisError fallback: `open` lets the request
// through unmetered, `closed` refuses it (503), `local` meters it with an in-process bucket
// (per replica: N replicas then allow up to N× the limit until Redis is back). The breaker counts
// round trips, not requests: a failed batch of 200 checks is one failure, not 200.

import type { BucketStore, TakeRequest, TakeResult } from './bucket.js';
import type { MemoryBucketStore } from './memory-store.js';
import { RedisBreaker } from './redis-breaker.js';
import { RoundTripError } from './redis-batch.js';
import type { RedisBucketStore } from './redis-store.js';

export type RedisFailureMode = 'open' | 'closed' | 'local';

/** What a store check can come back with: a bucket decision, or no decision at all. */
export type StoreOutcome =
  | (TakeResult & { readonly source: 'store' | 'local' })
  | { readonly source: 'open'; readonly allowed: true }
  | { readonly source: 'unavailable'; readonly allowed: false; readonly retryAfterMs: number };

/** One store as policies see it: `take` never throws and never waits past the command timeout. */
export interface PolicyStore {
  take(request: TakeRequest, onError: RedisFailureMode): StoreOutcome | Promise<StoreOutcome>;
  /** Store key for a policy's client identity. */
  keyFor(policy: string, identity: string): string;
  /** Gives `cost` tokens back to the store that took them (`source` of the take's outcome); best effort. */
  refund(request: TakeRequest, source: 'store' | 'local'): void;
  /**
   * Settles a reservation once the real cost is known: `delta` > 0 charges more (always, even into
   * debt: the work is done), `delta` < 0 gives back; on the store that took the reservation.
   */
  adjust(request: TakeRequest, delta: number, source: 'store' | 'local'): void;
}

/** maxWaitMs of a charge that must go through whatever is left: the bucket may go into debt. */
const FORCE = Number.MAX_SAFE_INTEGER;
export const adjustment = (request: TakeRequest, delta: number): TakeRequest => ({
  ...request,
  cost: delta,
  maxWaitMs: delta > 0 ? FORCE : 0,
});

export class MemoryPolicyStore implements PolicyStore {
  constructor(readonly store: MemoryBucketStore) {}
  take(request: TakeRequest): StoreOutcome {
    const r = this.store.take(request);
    return { allowed: r.allowed, remaining: r.remaining, waitMs: r.waitMs, fullInMs: r.fullInMs, source: 'store' };
  }
  keyFor(policy: string, identity: string): string {
    return `${policy}\u0000${identity}`;
  }
  refund(request: TakeRequest): void {
    this.store.take({ ...request, cost: -request.cost, maxWaitMs: 0 });
  }
  adjust(request: TakeRequest, delta: number): void {
    if (delta !== 0) this.store.take(adjustment(request, delta));
  }
}

export class GuardedRedisStore implements PolicyStore {
  readonly breaker: RedisBreaker;
  /** The last failed round trip already counted by the breaker (its other checks are not). */
  #countedRoundTrip = -1;

  constructor(
    readonly redis: RedisBucketStore,
    readonly local: BucketStore,
    breaker: { failures: number; cooldown: number },
    events: { degraded(degraded: boolean, reason: string): void },
  ) {
    this.breaker = new RedisBreaker(breaker.failures, breaker.cooldown, {
      opened: (reason) => events.degraded(true, reason),
      closed: () => events.degraded(false, 'redis answered again'),
    });
    redis.onReady?.(() => this.breaker.reconnected());
    // A slow round trip is one failure; any reply in between starts the count again, so a busy
    // but answering Redis never opens the breaker — a hung one does, after `failures` of them.
    redis.onSlow?.((reason) => this.breaker.failed(`redis: ${reason}`));
  }

  keyFor(policy: string, identity: string): string {
    return this.redis.bucketKey(policy, identity);
  }

  take(request: TakeRequest, onError: RedisFailureMode): StoreOutcome | Promise<StoreOutcome> {
    if (!this.breaker.allow()) return this.fallback(request, onError);
    return this.redis.take(request).then(this.#answered, (error: unknown) => {
      if (!(error instanceof RoundTripError) || error.roundTrip !== this.#countedRoundTrip) {
        if (error instanceof RoundTripError) this.#countedRoundTrip = error.roundTrip;
        this.breaker.failed(`redis: ${(error as Error).message ?? String(error)}`);
      }
      return this.fallback(request, onError);
    });
  }

  /** A Redis answer (one handler for every check: nothing per check to capture). */
  readonly #answered = (r: TakeResult): StoreOutcome => {
    this.breaker.succeeded();
    return { allowed: r.allowed, remaining: r.remaining, waitMs: r.waitMs, fullInMs: r.fullInMs, source: 'store' };
  };

  refund(request: TakeRequest, source: 'store' | 'local'): void {
    this.adjust(request, -request.cost, source);
  }

  adjust(request: TakeRequest, delta: number, source: 'store' | 'local'): void {
    if (delta === 0) return;
    const giveBack = adjustment(request, delta);
    if (source === 'local') {
      const pending = this.local.take(giveBack);
      if (pending instanceof Promise) pending.catch(() => undefined);
      return;
    }
    // Tokens taken in Redis go back to Redis — never to the local bucket, and a local take is
    // never given back to Redis (that would add tokens to the shared count that it never lost).
    if (this.breaker.state !== 'open') this.redis.take(giveBack).catch(() => undefined);
  }

  fallback(request: TakeRequest, onError: RedisFailureMode): StoreOutcome | Promise<StoreOutcome> {
    switch (onError) {
      case 'open':
        return { source: 'open', allowed: true };
      case 'closed':
        return { source: 'unavailable', allowed: false, retryAfterMs: Math.max(1000, this.breaker.retryInMs()) };
      case 'local': {
        const local = this.local.take(request);
        return local instanceof Promise ? local.then((result) => ({ ...result, source: 'local' as const })) : { ...local, source: 'local' };
      }
    }
  }
}
