// Idempotency stores that outlive a reload: one bounded memory store per route name, and one
// Redis connection while the config names the same Redis.

import type { IdempotencyConfig } from '../config/schema/idempotency.js';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import { MemoryIdempotencyStore } from '../idempotency/memory-store.js';
import { RedisIdempotencyStore } from '../idempotency/redis-store.js';
import { createRedisClient } from '../ratelimit/redis-store.js';
import type { IdempotencyStore } from '../idempotency/store.js';

export class IdempotencyRegistry {
  readonly #memory = new Map<string, MemoryIdempotencyStore>();
  #redis: { signature: string; store: RedisIdempotencyStore } | undefined;
  #retired: RedisIdempotencyStore[] = [];

  /** The store of route `route` under `config` (Redis when the gateway has one and the route allows it). */
  storeFor(route: string, config: IdempotencyConfig, redis: RedisConfig | undefined): IdempotencyStore {
    if (redis !== undefined && config.store !== 'memory') return this.#redisStore(redis);
    let store = this.#memory.get(route);
    if (store === undefined) {
      store = new MemoryIdempotencyStore(config.memoryLimit);
      this.#memory.set(route, store);
    } else store.maxBytes = config.memoryLimit;
    return store;
  }

  /** Drops the memory stores of routes no longer idempotent, and a Redis the config no longer names. */
  retain(routes: ReadonlySet<string>, redis: RedisConfig | undefined, usesRedis: boolean): void {
    for (const [name, store] of this.#memory) {
      if (routes.has(name)) continue;
      this.#memory.delete(name);
      void store.close();
    }
    if (this.#redis !== undefined && (!usesRedis || JSON.stringify(redis) !== this.#redis.signature)) {
      this.#retired.push(this.#redis.store);
      this.#redis = undefined;
    }
    // A previous connection closes once requests in flight on it had their chance to finish.
    for (const old of this.#retired.splice(0)) setTimeout(() => void old.close(), 5_000).unref();
  }

  /** Waits (bounded) for Redis to connect. */
  async ready(timeoutMs = 1_000): Promise<void> {
    await this.#redis?.store.ready(timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#memory.values(), ...(this.#redis ? [this.#redis.store] : []), ...this.#retired].map((s) => s.close()));
    this.#memory.clear();
    this.#redis = undefined;
    this.#retired = [];
  }

  #redisStore(config: RedisConfig): RedisIdempotencyStore {
    const signature = JSON.stringify(config);
    if (this.#redis?.signature === signature) return this.#redis.store;
    if (this.#redis) this.#retired.push(this.#redis.store);
    this.#redis = { signature, store: new RedisIdempotencyStore(config, createRedisClient(config)) };
    return this.#redis.store;
  }
}
