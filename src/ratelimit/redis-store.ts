// Buckets in Redis (standalone, Sentinel or Cluster) via ioredis. Checks are batched per
// event-loop turn and hash slot (redis-batch.ts): one EVALSHA per batch, the script sent again
// with EVAL when Redis answers NOSCRIPT (after a restart, a failover or SCRIPT FLUSH; EVAL also
// puts it back in that node's script cache). Keys are `<prefix>{<policy>:<hash of identity>}`: the
// hash tag keeps each bucket on one slot, and hashing keeps API keys and tokens out of Redis.
//
// The client never queues commands while disconnected, and a check waits at most `hardTimeout`
// (see redis-batch.ts for when Redis counts as slow), so a slow or dead Redis never makes a
// request hang. It reconnects by itself in the background, at least every 100 ms.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import type { BucketStore, TakeRequest, TakeResult } from './bucket.js';
import { RedisBatcher } from './redis-batch.js';
import { TAKE_SCRIPT, TAKE_SCRIPT_SHA } from './redis-script.js';
import { followSwitchover } from './sentinel-switch.js';

// ioredis is loaded when the first Redis store is made, not at start: a gateway without `redis`
// does not carry it in memory (about 25 MB of RSS).
const require = createRequire(import.meta.url);
let ioredis: typeof import('ioredis') | undefined;
const loadIoredis = (): typeof import('ioredis') => (ioredis ??= require('ioredis') as typeof import('ioredis'));

/** Reconnect quickly and keep trying: back on the shared buckets within ~100 ms of Redis being back. */
const reconnectDelay = (times: number): number => Math.min(times * 20, 100);

export class RedisBucketStore implements BucketStore {
  readonly client: Redis | Cluster;
  readonly keyPrefix: string;
  /** The last connection error (for degraded reasons); cleared on ready. */
  lastError: Error | undefined;
  readonly commandTimeout: number;

  readonly #batcher: RedisBatcher;

  constructor(config: RedisConfig) {
    this.keyPrefix = config.keyPrefix;
    this.commandTimeout = config.commandTimeout;
    this.client = createRedisClient(config);
    // Errors surface on the commands; without a listener ioredis would log every retry.
    this.client.on('error', (error: Error) => {
      this.lastError = error;
    });
    this.client.on('ready', () => {
      this.lastError = undefined;
      for (const listener of this.#readyListeners) listener();
    });
    const client = this.client;
    const { Command } = loadIoredis();
    this.#batcher = new RedisBatcher(
      (keys, args) => {
        // The numbers travel as one space-separated argument (the script splits it): one
        // argument to encode instead of 6 per check, the same decimal text for each number.
        const packed = args.join(' ');
        const scriptArgs = [TAKE_SCRIPT_SHA, String(keys.length), ...keys, packed];
        // A Command sent as is: what client.evalsha() builds, without its argument juggling.
        const sent = client.sendCommand(new Command('evalsha', scriptArgs, { replyEncoding: 'utf8' })) as Promise<unknown>;
        return sent.catch((error: unknown) => {
          if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
          return client.eval(TAKE_SCRIPT, keys.length, ...keys, packed);
        });
      },
      {
        commandTimeout: config.commandTimeout,
        hardTimeout: config.hardTimeout,
        bySlot: config.cluster !== undefined,
        onSlow: (reason) => {
          for (const listener of this.#slowListeners) listener(reason);
        },
      },
    );
  }

  readonly #readyListeners: Array<() => void> = [];
  readonly #slowListeners: Array<(reason: string) => void> = [];

  /** Called when a round trip waited `commandTimeout` (idle) without a reply. */
  onSlow(listener: (reason: string) => void): void {
    this.#slowListeners.push(listener);
  }

  /** Called every time the client is (again) connected and ready for commands. */
  onReady(listener: () => void): void {
    this.#readyListeners.push(listener);
  }

  /** Recent bucket keys by policy, then identity (no joined string to build and hash per check). */
  readonly #keys = new Map<string, Map<string, string>>();
  #cachedKeys = 0;

  /** The Redis key of a bucket: hash-tagged, identity hashed (recent ones cached). */
  bucketKey(policy: string, identity: string): string {
    let byIdentity = this.#keys.get(policy);
    let key = byIdentity?.get(identity);
    if (key === undefined) {
      const digest = createHash('sha256').update(identity).digest('base64url').slice(0, 22);
      key = `${this.keyPrefix}{${policy}:${digest}}`;
      if (this.#cachedKeys >= 10_000) {
        this.#keys.clear();
        this.#cachedKeys = 0;
        byIdentity = undefined;
      }
      if (byIdentity === undefined) this.#keys.set(policy, (byIdentity = new Map()));
      byIdentity.set(identity, key);
      this.#cachedKeys++;
    }
    return key;
  }

  take(request: TakeRequest): Promise<TakeResult> {
    return this.#batcher.take(request);
  }

  /** Checks given up on (timed out) whose late replies had taken tokens, which were given back. */
  get lateRefunds(): number {
    return this.#batcher.lateRefunds;
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

/**
 * A client for the configured Redis (standalone, Sentinel or Cluster) that never queues commands
 * while disconnected and reconnects by itself at least every 100 ms. Shared-state buses use it too.
 */
export function createRedisClient(config: RedisConfig, { autoPipelining = false } = {}): Redis | Cluster {
  const options: RedisOptions = {
    // No ioredis commandTimeout: the batcher times each round trip (see redis-batch.ts).
    connectTimeout: config.connectTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // The batcher already sends one command per slot and turn; ioredis' auto-pipelining would
    // hold a batch back until the previous one is answered (the cache, without a batcher, asks for it).
    enableAutoPipelining: autoPipelining,
    retryStrategy: reconnectDelay,
    lazyConnect: false,
  };
  const { Cluster: ClusterClient, Redis: RedisClient } = loadIoredis();
  if (config.cluster) {
    return new ClusterClient(config.cluster.map(redisNode), {
      redisOptions: { ...options, ...seedCredentials(config.cluster) },
      enableOfflineQueue: false,
      enableAutoPipelining: autoPipelining,
      enableReadyCheck: true,
      clusterRetryStrategy: reconnectDelay,
      // After a failover the slot map is fetched again on the first MOVED or connection error.
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
    });
  } else if (config.sentinels) {
    const sentinels = config.sentinels.map(redisNode);
    const client = new RedisClient({
      ...options,
      ...seedCredentials(config.sentinels),
      sentinels,
      name: config.name!,
      sentinelRetryStrategy: reconnectDelay,
      // a sentinel that accepts the connection but does not answer must not stall reconnecting
      sentinelCommandTimeout: config.connectTimeout,
    });
    followSwitchover(RedisClient, client, sentinels, config.name!, config.connectTimeout);
    return client;
  } else {
    return new RedisClient(config.url!, options);
  }
}

export function redisNode(seed: string): { host: string; port: number } {
  if (/^rediss?:\/\//.test(seed)) {
    const url = new URL(seed);
    return { host: url.hostname, port: Number(url.port || 6379) };
  }
  const at = seed.lastIndexOf(':');
  return at === -1 ? { host: seed, port: 6379 } : { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) };
}

/** user:password (and TLS) from the first seed URL that carries them (every node shares them). */
export function seedCredentials(seeds: readonly string[]): { username?: string; password?: string; tls?: Record<string, never> } {
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
