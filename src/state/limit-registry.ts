// Live limiter state that survives config reloads: the in-memory buckets, the Redis connection
// (kept while the reloaded config names the same Redis) and the local fallback buckets. Each
// snapshot compiles its policies against these stores.

import type { GatewayConfig } from '../config/schema/index.js';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import type { LimiterEvents } from '../core/events.js';
import { GuardedRedisStore, MemoryPolicyStore, type PolicyStore } from '../ratelimit/guarded-store.js';
import { MemoryBucketStore } from '../ratelimit/memory-store.js';
import { compilePolicy, type CompiledPolicy } from '../ratelimit/policy.js';
import { RedisBucketStore } from '../ratelimit/redis-store.js';
import { RouteRateLimit } from '../ratelimit/route-limit.js';
import type { SharedCount } from './backend-capacity.js';

export class RateLimitRegistry {
  readonly memory = new MemoryBucketStore({ onEvict: (count) => this.observer().limiterEvicted('memory', count) });
  readonly local = new MemoryBucketStore({ onEvict: (count) => this.observer().limiterEvicted('local', count) });
  readonly #memoryStore: PolicyStore;
  #redis: { signature: string; store: GuardedRedisStore } | undefined;
  #retired: RedisBucketStore[] = [];

  /** `memoryStore`: where `store: memory` policies keep their buckets (default: this process; workers share the primary's). */
  constructor(
    readonly observer: () => LimiterEvents,
    memoryStore?: (local: MemoryBucketStore) => PolicyStore,
  ) {
    this.#memoryStore = memoryStore ? memoryStore(this.local) : new MemoryPolicyStore(this.memory);
  }

  /** The Redis store for this config (the same connection while the config is unchanged). */
  redisStore(config: RedisConfig): GuardedRedisStore {
    const signature = JSON.stringify(config);
    if (this.#redis?.signature === signature) return this.#redis.store;
    if (this.#redis) this.#retired.push(this.#redis.store.redis);
    const store = new GuardedRedisStore(new RedisBucketStore(config), this.local, config.breaker, {
      degraded: (degraded, reason) => this.observer().limiterDegraded(degraded, reason),
    });
    this.#redis = { signature, store };
    return store;
  }

  /** Policies of a config, compiled; routes pick theirs with `forRoute`. */
  compile(config: GatewayConfig): RateLimitCompilation {
    this.memory.maxBuckets = config.limits.maxMemoryBuckets;
    this.local.maxBuckets = config.limits.maxMemoryBuckets;
    const policies = new Map<string, CompiledPolicy>();
    for (const [name, policy] of Object.entries(config.rateLimits)) {
      const useRedis = config.redis !== undefined && policy.store !== 'memory';
      const store: PolicyStore = useRedis ? this.redisStore(config.redis!) : this.#memoryStore;
      policies.set(name, compilePolicy(name, policy, store, config.redis?.onRedisError ?? 'local', config.listen.trustedProxies));
    }
    if (!config.redis && this.#redis) {
      this.#retired.push(this.#redis.store.redis);
      this.#redis = undefined;
    }
    this.#closeRetired();
    return {
      forRoute: (names) => (names && names.length > 0 ? new RouteRateLimit(names.map((name) => policies.get(name)!)) : undefined),
    };
  }

  /**
   * A per-minute count shared by every replica through Redis (declared backend rpm/tpm), on the
   * limiter's own store and batching; undefined without Redis.
   */
  sharedCount(config: GatewayConfig, backendId: string, rpm: number | undefined, tpm: number | undefined): SharedCount | undefined {
    if (!config.redis) return undefined;
    const store = this.redisStore(config.redis);
    const count = async (
      kind: string,
      window: number,
      endsInMs: number,
      limit: number | undefined,
      cost: number,
    ): Promise<number | undefined> => {
      if (limit === undefined || cost <= 0) return undefined;
      const pending = store.take(
        {
          key: store.keyFor('backend-capacity', `${backendId}\u0001${kind}\u0001${window}`),
          capacity: limit,
          refillPerMs: 0,
          cost,
          // Counted even past the limit: it records what was sent, it refuses nothing.
          maxWaitMs: Number.MAX_SAFE_INTEGER,
          windowMs: Math.max(1, endsInMs),
        },
        'open',
      );
      const outcome = pending instanceof Promise ? await pending : pending;
      return outcome.source === 'store' ? limit - outcome.remaining : undefined;
    };
    return async (window, endsInMs, requests, tokens) => {
      const [sentRequests, sentTokens] = await Promise.all([
        count('r', window, endsInMs, rpm, requests),
        count('t', window, endsInMs, tpm, tokens),
      ]);
      return { requests: sentRequests, tokens: sentTokens };
    };
  }

  /** The Redis connection of this config, for other readers than the limiter (API key sets). */
  redisConnection(config: RedisConfig): RedisBucketStore {
    const store = this.redisStore(config);
    this.#closeRetired();
    return store.redis;
  }

  /** Connections of a previous config close once requests in flight had their chance to finish. */
  #closeRetired(): void {
    for (const old of this.#retired.splice(0)) setTimeout(() => void old.close(), 5_000).unref();
  }

  /** Waits (bounded) for Redis to connect, so the first requests are not served degraded. */
  async ready(timeoutMs = 1_000): Promise<void> {
    if (this.#redis) await this.#redis.store.redis.ready(timeoutMs);
  }

  async close(): Promise<void> {
    this.memory.close();
    this.local.close();
    await Promise.all([this.#redis?.store.redis.close(), ...this.#retired.map((store) => store.close())]);
    this.#redis = undefined;
    this.#retired = [];
  }
}

export interface RateLimitCompilation {
  forRoute(names: readonly string[] | undefined): RouteRateLimit | undefined;
}
