// The Redis store behind its breaker, with the onRedisError fallback: `open` lets the request
// through unmetered, `closed` refuses it (503), `local` meters it with an in-process bucket
// (per replica: N replicas then allow up to N× the limit until Redis is back).

import type { BucketStore, TakeRequest, TakeResult } from './bucket.js';
import type { MemoryBucketStore } from './memory-store.js';
import { RedisBreaker } from './redis-breaker.js';
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
}

export class MemoryPolicyStore implements PolicyStore {
  constructor(readonly store: MemoryBucketStore) {}
  take(request: TakeRequest): StoreOutcome {
    const r = this.store.take(request);
    return { allowed: r.allowed, remaining: r.remaining, waitMs: r.waitMs, fullInMs: r.fullInMs, source: 'store' };
  }
  keyFor(policy: string, identity: string): string {
    return `${policy}\u0000${identity}`;
  }
}

export class GuardedRedisStore implements PolicyStore {
  readonly breaker: RedisBreaker;

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
  }

  keyFor(policy: string, identity: string): string {
    return this.redis.bucketKey(policy, identity);
  }

  take(request: TakeRequest, onError: RedisFailureMode): StoreOutcome | Promise<StoreOutcome> {
    if (!this.breaker.allow()) return this.fallback(request, onError);
    return this.redis.take(request).then(
      (r): StoreOutcome => {
        this.breaker.succeeded();
        return { allowed: r.allowed, remaining: r.remaining, waitMs: r.waitMs, fullInMs: r.fullInMs, source: 'store' };
      },
      (error: unknown) => {
        this.breaker.failed(`redis: ${(error as Error).message ?? String(error)}`);
        return this.fallback(request, onError);
      },
    );
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
