// API keys kept in Redis sets (a route's `auth.apiKeys.redisSet`). Each set is read with SMEMBERS
// every `refresh` (and at once whenever the connection is ready again) in the background and kept
// in memory as SHA-256 digests only, so a request never waits on Redis. A reader outlives reloads
// while the config names the same set on the same Redis, over the limiter's connection.
//
// Redis down or the read failing: the last good read stays in use (logged once per outage). A set
// never read (Redis down since start): its keys are refused until the first read succeeds.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { indexApiKeys, type ApiKeyIndex, type LiveApiKeys } from '../auth/api-keys.js';
import { parseKeyLine, type ApiKeyEntry, type ApiKeysConfig } from '../config/schema/auth.js';
import type { GatewayConfig } from '../config/schema/index.js';
import type { RedisBucketStore } from '../ratelimit/redis-store.js';
import type { RateLimitRegistry } from './limit-registry.js';

/** Where readers report outages and recoveries (the gateway's logger fits). */
export interface KeySetLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

type RedisClient = RedisBucketStore['client'];

/** Members hashed per event-loop turn: a set of 100,000 keys never stalls requests for long. */
const HASH_CHUNK = 2_000;

class RedisKeySet implements LiveApiKeys {
  current: ApiKeyIndex | undefined;
  refreshMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  #failing = false;
  #stopped = false;
  readonly #onReady = () => void this.read();

  constructor(
    readonly name: string,
    readonly client: RedisClient,
    refreshMs: number,
    readonly log: KeySetLog,
  ) {
    this.every(refreshMs);
    client.on('ready', this.#onReady);
    if (client.status === 'ready') void this.read();
  }

  every(refreshMs: number): void {
    if (refreshMs === this.refreshMs) return;
    this.refreshMs = refreshMs;
    clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.read(), refreshMs);
    this.#timer.unref();
  }

  /** One read at a time: a tick while the previous read still waits is skipped. */
  read(): Promise<void> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    let members: string[];
    try {
      members = await within(this.client.smembers(this.name), Math.max(this.refreshMs, 1_000));
    } catch (error) {
      this.unavailable((error as Error).message);
      return;
    }
    const index = new Map<string, { digest: Buffer; id: string }>();
    for (let start = 0; start < members.length; start += HASH_CHUNK) {
      if (start > 0) await nextTurn();
      const entries = members
        .slice(start, start + HASH_CHUNK)
        .map(parseKeyLine)
        .filter((entry): entry is ApiKeyEntry => entry !== undefined);
      indexApiKeys(entries, index);
    }
    this.current = index;
    if (this.#failing) {
      this.#failing = false;
      this.log.info(
        { event: 'auth.key_set_read', set: this.name, keys: index.size },
        `the API key set ${JSON.stringify(this.name)} is read again`,
      );
    }
  }

  /** Logs the first failure of an outage; later ones are quiet until a read succeeds. */
  unavailable(reason: string): void {
    if (this.#failing || this.#stopped) return;
    this.#failing = true;
    const kept = this.current
      ? `the ${this.current.size} keys of its last read stay in use`
      : 'it was never read: its keys are refused (401) while keys from the config and key files work';
    this.log.warn(
      { event: 'auth.key_set_unavailable', set: this.name, err: reason },
      `cannot read the API key set ${JSON.stringify(this.name)} from Redis; ${kept} until it can be read again`,
    );
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.client.off('ready', this.#onReady);
  }
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply within ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The live keys of a route's `apiKeys` (undefined when it names no `redisSet`). */
export type LiveKeysOf = (apiKeys: ApiKeysConfig) => LiveApiKeys | undefined;

const NEVER_READ: LiveApiKeys = { current: undefined };

export class ApiKeySetRegistry {
  readonly #sets = new Map<string, RedisKeySet>();
  #redis: string | undefined;

  constructor(
    readonly limits: RateLimitRegistry,
    readonly log: () => KeySetLog,
  ) {}

  /** Starts readers for the sets `config` names, stops the others; routes pick theirs with the result. */
  compile(config: GatewayConfig): LiveKeysOf {
    const wanted = new Map<string, number>();
    for (const route of config.routes) {
      const apiKeys = route.auth?.apiKeys;
      if (apiKeys?.redisSet !== undefined)
        wanted.set(apiKeys.redisSet, Math.min(wanted.get(apiKeys.redisSet) ?? Number.POSITIVE_INFINITY, apiKeys.refresh));
    }
    // Another Redis: sets of the same name there are other sets.
    const redis = config.redis ? JSON.stringify(config.redis) : undefined;
    for (const [name, set] of this.#sets) {
      if (redis !== this.#redis || !wanted.has(name)) {
        set.stop();
        this.#sets.delete(name);
      }
    }
    this.#redis = redis;
    if (config.redis && wanted.size > 0) {
      const client = this.limits.redisConnection(config.redis).client;
      for (const [name, refreshMs] of wanted) {
        const set = this.#sets.get(name);
        if (set) set.every(refreshMs);
        else this.#sets.set(name, new RedisKeySet(name, client, refreshMs, this.log()));
      }
    }
    return (apiKeys) => (apiKeys.redisSet === undefined ? undefined : (this.#sets.get(apiKeys.redisSet) ?? NEVER_READ));
  }

  /** Waits (bounded) for every set's first read; a set still unread is logged (its keys are refused). */
  async ready(timeoutMs = 1_000): Promise<void> {
    const sets = [...this.#sets.values()];
    const deadline = Date.now() + timeoutMs;
    while (sets.some((set) => set.current === undefined) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const set of sets) if (set.current === undefined) set.unavailable(`not read within ${timeoutMs}ms of starting`);
  }

  close(): void {
    for (const set of this.#sets.values()) set.stop();
    this.#sets.clear();
  }
}
