// Cached answers in Redis, shared by every replica: one key per entry
// (`<redis.keyPrefix>cache:<path+query>\0<hash>`), written with a TTL (the entry's retention) and
// never larger than the route's maxBody. Purges SCAN the path prefix and UNLINK what they find,
// so a purge on one replica is a purge for all.
// Redis down is a miss, never an error: every command is timed out (redis.commandTimeout), a
// breaker skips Redis after repeated failures, and writes are fire-and-forget.

import type { Cluster, Redis } from 'ioredis';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import { decodeValue, encodeValue, type StoredValue } from '../cache/entry.js';
import { RedisBreaker } from '../ratelimit/redis-breaker.js';
import { createRedisClient } from '../ratelimit/redis-store.js';
import { whenReady, withTimeout } from '../core/waits.js';
import type { CacheStore } from './cache-memory.js';

export interface RedisCacheEvents {
  degraded(degraded: boolean, reason: string): void;
}

/** The one connection of the cache to Redis, shared by every route that stores there. */
export class RedisCacheConnection {
  readonly client: Redis | Cluster;
  readonly prefix: string;
  readonly commandTimeout: number;
  readonly breaker: RedisBreaker;

  readonly #config: RedisConfig;

  constructor(config: RedisConfig, events: RedisCacheEvents) {
    this.#config = config;
    this.prefix = `${config.keyPrefix}cache:`;
    this.commandTimeout = config.commandTimeout;
    this.breaker = new RedisBreaker(config.breaker.failures, config.breaker.cooldown, {
      opened: (reason) => events.degraded(true, reason),
      closed: () => events.degraded(false, 'redis answered again'),
    });
    // Sentinel and Cluster as the limiter connects to them; no batcher here, so ioredis pipelines.
    this.client = createRedisClient(config, { autoPipelining: true });
    this.client.on('error', () => {});
  }

  /** Runs a command unless the breaker skips Redis; undefined when Redis could not answer. */
  async run<T>(command: (client: Redis | Cluster) => Promise<T>): Promise<T | undefined> {
    if (!this.breaker.allow()) return undefined;
    try {
      const result = await withTimeout(command(this.client), this.commandTimeout);
      this.breaker.succeeded();
      return result;
    } catch (error) {
      this.breaker.failed(`redis cache: ${(error as Error).message}`);
      return undefined;
    }
  }

  ready(timeoutMs: number): Promise<void> {
    return whenReady(this.client, timeoutMs);
  }

  #subscriber: Redis | Cluster | undefined;

  /** Purge announcements of the other replicas (for their memory stores) reach `onPurge`. */
  subscribe(instance: string, onPurge: (prefix: string) => void): void {
    // Made like the command client, not duplicate(): with Sentinel it follows a switchover too.
    const subscriber = createRedisClient(this.#config);
    this.#subscriber = subscriber;
    const channel = `${this.prefix}purge`;
    subscriber.on('error', () => {});
    // Subscribe on every (re)connection: with no offline queue a subscribe sent while down fails.
    subscriber.on('ready', () => void subscriber.subscribe(channel).catch(() => {}));
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      try {
        const parsed = JSON.parse(message) as { instance?: unknown; prefix?: unknown };
        if (parsed.instance !== instance && typeof parsed.prefix === 'string') onPurge(parsed.prefix);
      } catch {
        // not ours
      }
    });
  }

  /** Tells the other replicas to purge `prefix` from their memory stores; false when Redis could not take it. */
  async announcePurge(instance: string, prefix: string): Promise<boolean> {
    const channel = `${this.prefix}purge`;
    const sent = await this.run((client) => client.publish(channel, JSON.stringify({ instance, prefix })));
    return sent !== undefined;
  }

  /** Deletes every cache key whose path + query starts with `target` (all routes, all replicas). */
  async purge(target: string): Promise<number> {
    const pattern = `${globEscape(this.prefix + target)}*`;
    const nodes = 'nodes' in this.client ? (this.client as Cluster).nodes('master') : [this.client as Redis];
    let count = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const reply = await withTimeout(node.scan(cursor, 'MATCH', pattern, 'COUNT', 500), this.commandTimeout * 10);
        cursor = reply[0];
        const keys = reply[1];
        if (keys.length > 0) count += await withTimeout(node.unlink(...keys), this.commandTimeout * 10);
      } while (cursor !== '0');
    }
    return count;
  }

  close(): void {
    this.#subscriber?.disconnect();
    this.client.disconnect();
  }
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

/** One route's view of the shared connection: its size cap. */
export class RedisCacheStore implements CacheStore {
  readonly kind = 'redis';
  constructor(
    readonly connection: RedisCacheConnection,
    readonly maxValueBytes: number,
  ) {}

  get(key: string): Promise<StoredValue | undefined> {
    const redisKey = this.connection.prefix + key;
    return this.connection.run((client) => client.getBuffer(redisKey)).then((bytes) => (bytes ? decodeValue(bytes) : undefined));
  }

  set(key: string, value: StoredValue, ttlMs: number): void {
    if (ttlMs <= 0) return;
    const bytes = encodeValue(value);
    if (bytes.length > this.maxValueBytes + 4096) return;
    const redisKey = this.connection.prefix + key;
    void this.connection.run((client) => client.set(redisKey, bytes, 'PX', Math.ceil(ttlMs)));
  }

  async purge(prefix: string): Promise<number> {
    try {
      return await this.connection.purge(prefix);
    } catch {
      return 0;
    }
  }
}
