// The cache's live state, kept across reloads: one memory LRU per route (by route name), the
// shared Redis connection (kept while the config names the same Redis), and the in-flight
// misses that identical requests wait on (collapsed forwarding).

import { randomUUID } from 'node:crypto';
import type { GatewayConfig } from '../config/schema/index.js';
import type { CacheConfig } from '../config/schema/cache.js';
import type { CacheEntry } from '../cache/entry.js';
import { MemoryCacheStore, type CacheStore } from './cache-memory.js';
import { RedisCacheConnection, RedisCacheStore, type RedisCacheEvents } from './cache-redis.js';

export type { CacheStore };

/** One request in flight for a key, and the identical requests waiting for its entry. */
export interface Flight {
  readonly key: string;
  readonly since: number;
  readonly waiters: Array<(entry: CacheEntry | undefined) => void>;
}

/** One miss in flight per key; identical misses wait for its entry (or give up after their bound). */
export class CollapseLocks {
  readonly #flights = new Map<string, Flight>();

  constructor(readonly clock: () => number = Date.now) {}

  /**
   * The caller's flight when it leads (goes to the backend); undefined when a request for this key
   * is already in flight. A flight held longer than `maxHoldMs` (its leader never reported back) is
   * taken over, so a lost leader costs waiters one bounded wait, never every later request.
   */
  lead(key: string, maxHoldMs: number): Flight | undefined {
    const now = this.clock();
    const current = this.#flights.get(key);
    if (current !== undefined) {
      if (now - current.since <= maxHoldMs) return undefined;
      this.release(current, undefined);
    }
    const flight: Flight = { key, since: now, waiters: [] };
    this.#flights.set(key, flight);
    return flight;
  }

  isInFlight(key: string): boolean {
    return this.#flights.has(key);
  }

  /** Resolves with the leader's entry, or undefined when it stored none or `timeoutMs` passed. */
  wait(key: string, timeoutMs: number): Promise<CacheEntry | undefined> {
    const flight = this.#flights.get(key);
    if (flight === undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let done = false;
      const finish = (entry: CacheEntry | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(entry);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      flight.waiters.push(finish);
    });
  }

  /** The leader is done: waiters get its entry (undefined: nothing stored, they go on their own). */
  release(flight: Flight, entry: CacheEntry | undefined): void {
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
    for (const wake of flight.waiters.splice(0)) wake(entry);
  }

  get size(): number {
    return this.#flights.size;
  }
}

export class CacheRegistry {
  readonly #memory = new Map<string, MemoryCacheStore>();
  #redis: { signature: string; connection: RedisCacheConnection } | undefined;
  readonly locks = new CollapseLocks();

  constructor(readonly events: RedisCacheEvents = { degraded() {} }) {}

  /** The store a route's cache config asks for. */
  storeFor(route: string, cache: CacheConfig, config: GatewayConfig): CacheStore {
    if (cache.store === 'redis' && config.redis) return new RedisCacheStore(this.#connection(config), cache.maxBody);
    let store = this.#memory.get(route);
    if (store === undefined) {
      store = new MemoryCacheStore(cache.maxSize, cache.maxBody);
      this.#memory.set(route, store);
    } else {
      store.resize(cache.maxSize, cache.maxBody);
    }
    return store;
  }

  /**
   * With a root `redis` and any cached route, the cache keeps a connection: Redis stores use it,
   * and purges reach the memory stores of every replica through it (pub/sub).
   */
  connect(config: GatewayConfig): void {
    if (config.redis) this.#connection(config);
  }

  #connection(config: GatewayConfig): RedisCacheConnection {
    const signature = JSON.stringify(config.redis);
    if (this.#redis?.signature === signature) return this.#redis.connection;
    const old = this.#redis?.connection;
    if (old) setTimeout(() => old.close(), 5_000).unref();
    const connection = new RedisCacheConnection(config.redis!, this.events);
    connection.subscribe(this.#instance, (prefix) => void this.#purgeMemory(prefix));
    this.#redis = { signature, connection };
    return connection;
  }

  /** This process among the replicas (its own purge announcements are not applied twice). */
  readonly #instance = randomUUID();

  async #purgeMemory(prefix: string): Promise<number> {
    let count = 0;
    for (const store of this.#memory.values()) count += await store.purge(prefix);
    return count;
  }

  /** Drops stores of routes that are gone or no longer cache in memory. */
  retain(memoryRoutes: ReadonlySet<string>, usesRedis: boolean): void {
    for (const [name, store] of this.#memory) {
      if (!memoryRoutes.has(name)) {
        store.clear();
        this.#memory.delete(name);
      }
    }
    if (!usesRedis && this.#redis) {
      const old = this.#redis.connection;
      setTimeout(() => old.close(), 5_000).unref();
      this.#redis = undefined;
    }
  }

  memoryStore(route: string): MemoryCacheStore | undefined {
    return this.#memory.get(route);
  }

  /**
   * Purges `prefix` (path + query) from every memory store of this process and from Redis, and
   * announces it to the other replicas for their memory stores. `redis` is undefined without a
   * Redis connection or when Redis could not be reached.
   */
  async purge(prefix: string): Promise<{ memory: number; redis: number | undefined }> {
    const memory = await this.#purgeMemory(prefix);
    let redis: number | undefined;
    if (this.#redis) {
      const connection = this.#redis.connection;
      try {
        redis = await connection.purge(prefix);
      } catch {
        redis = undefined;
      }
      if (!(await connection.announcePurge(this.#instance, prefix))) redis = undefined;
    }
    return { memory, redis };
  }

  async ready(timeoutMs = 1_000): Promise<void> {
    if (this.#redis) await this.#redis.connection.ready(timeoutMs);
  }

  close(): void {
    for (const store of this.#memory.values()) store.clear();
    this.#memory.clear();
    this.#redis?.connection.close();
    this.#redis = undefined;
  }
}
