// Buckets in Redis (standalone or Cluster) via ioredis: one EVALSHA per check, the script sent
// again with EVAL when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH; EVAL also puts
// it back in that node's script cache). Keys are `<prefix>{<policy>:<hash of identity>}`: the
// hash tag keeps each bucket on one slot, and hashing keeps API keys and tokens out of Redis.
//
// The client never queues commands while disconnected and times every command out quickly, so a
// slow or dead Redis costs at most `commandTimeout` per request (and nothing once the breaker
// in guarded-store.ts is open). It reconnects by itself in the background.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Cluster, ClusterNode, Redis, RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import type { BucketStore, TakeRequest, TakeResult } from './bucket.js';
import { TAKE_SCRIPT, TAKE_SCRIPT_SHA } from './redis-script.js';

type Reply = [number, string, number, number];

// ioredis is loaded when the first Redis store is made, not at start: a gateway without `redis`
// does not carry it in memory (about 25 MB of RSS).
const require = createRequire(import.meta.url);
let ioredis: typeof import('ioredis') | undefined;
const loadIoredis = (): typeof import('ioredis') => (ioredis ??= require('ioredis') as typeof import('ioredis'));

export class RedisBucketStore implements BucketStore {
  readonly client: Redis | Cluster;
  readonly keyPrefix: string;
  /** The last connection error (for degraded reasons); cleared on ready. */
  lastError: Error | undefined;
  readonly commandTimeout: number;

  constructor(config: RedisConfig) {
    this.keyPrefix = config.keyPrefix;
    this.commandTimeout = config.commandTimeout;
    const options: RedisOptions = {
      // No ioredis commandTimeout: withTimeout() below is the one timer per check. A command
      // stuck on a hung connection stays in ioredis' queue until the connection drops; the
      // breaker keeps those to one probe per cooldown.
      connectTimeout: config.connectTimeout,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true,
      retryStrategy: (times: number) => Math.min(times * 50, 250),
      lazyConnect: false,
    };
    const { Cluster: ClusterClient, Redis: RedisClient } = loadIoredis();
    this.client = config.cluster
      ? new ClusterClient(config.cluster.map(clusterNode), {
          redisOptions: { ...options, ...clusterCredentials(config.cluster) },
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          clusterRetryStrategy: (times: number) => Math.min(times * 50, 250),
        })
      : new RedisClient(config.url!, options);
    // Errors surface on the commands; without a listener ioredis would log every retry.
    this.client.on('error', (error: Error) => {
      this.lastError = error;
    });
    this.client.on('ready', () => {
      this.lastError = undefined;
    });
  }

  readonly #keys = new Map<string, string>();

  /** The Redis key of a bucket: hash-tagged, identity hashed (recent ones cached). */
  bucketKey(policy: string, identity: string): string {
    const id = `${policy}\u0000${identity}`;
    let key = this.#keys.get(id);
    if (key === undefined) {
      const digest = createHash('sha256').update(identity).digest('base64url').slice(0, 22);
      key = `${this.keyPrefix}{${policy}:${digest}}`;
      if (this.#keys.size >= 10_000) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }

  take(request: TakeRequest): Promise<TakeResult> {
    return withTimeout(this.#run(request), this.commandTimeout);
  }

  async #run(request: TakeRequest): Promise<TakeResult> {
    const args = [request.capacity, request.refillPerMs, request.cost, request.maxWaitMs] as const;
    let reply: Reply;
    try {
      reply = (await this.client.evalsha(TAKE_SCRIPT_SHA, 1, request.key, ...args)) as Reply;
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      reply = (await this.client.eval(TAKE_SCRIPT, 1, request.key, ...args)) as Reply;
    }
    return { allowed: reply[0] === 1, remaining: Number(reply[1]), waitMs: Number(reply[2]), fullInMs: Number(reply[3]) };
  }

  /** Resolves once connected, or after `timeoutMs` (the gateway then starts degraded). */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.client.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

export function clusterNode(seed: string): ClusterNode {
  if (/^rediss?:\/\//.test(seed)) {
    const url = new URL(seed);
    return { host: url.hostname, port: Number(url.port || 6379) };
  }
  const at = seed.lastIndexOf(':');
  return at === -1 ? { host: seed, port: 6379 } : { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) };
}

/**
 * Rejects when `promise` has not settled within `ms`. The verdict waits for the check phase of
 * the event loop (setImmediate) after the timer fires: when the loop itself was late (a busy
 * process), a reply already read from the socket in that same turn still counts — only Redis
 * being slow is a timeout, not the gateway being busy.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`command timed out after ${ms}ms`));
      });
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** user:password from the first seed URL that carries them (every node of a cluster shares them). */
export function clusterCredentials(seeds: readonly string[]): { username?: string; password?: string; tls?: Record<string, never> } {
  for (const seed of seeds) {
    if (!/^rediss?:\/\//.test(seed)) continue;
    const url = new URL(seed);
    const tls = url.protocol === 'rediss:' ? { tls: {} } : {};
    if (url.password || url.username)
      return {
        ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
        ...tls,
      };
    if (tls.tls) return tls;
  }
  return {};
}
