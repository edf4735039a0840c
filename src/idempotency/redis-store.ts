// Idempotency records in Redis (the gateway's `redis:`), shared by every replica and kept across
// gateway restarts. One Lua script per step, so "take the lease unless the key is held" and
// "store the answer only in place of my own lease" are atomic. Keys are
// `<prefix>idem:{<hash>}` (hash-tagged for Cluster; the client's key is hashed, never stored).
// The client does not queue while disconnected: a dead Redis fails a request's store step at
// once, and the route's onStoreError decides.

import type { Cluster, Redis } from 'ioredis';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import type { BeginResult, IdempotencyStore, StoredAnswer } from './store.js';
import { leaseToken } from './store.js';
import { whenReady, withTimeout } from '../core/waits.js';

const BEGIN = `local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'', 0}
end
return {v, redis.call('PTTL', KEYS[1])}`;

const COMPLETE = `local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

interface LeaseRecord {
  k: 'lease';
  t: string;
  f: string;
}
interface DoneRecord {
  k: 'done';
  f: string;
  s: number;
  h: Array<[string, string]>;
  b: string;
}

type ScriptClient = (Redis | Cluster) & {
  idemBegin(key: string, lease: string, leaseMs: number): Promise<[string, number]>;
  idemComplete(key: string, lease: string, record: string, ttlMs: number): Promise<number>;
  idemRelease(key: string, lease: string): Promise<number>;
};

export class RedisIdempotencyStore implements IdempotencyStore {
  readonly client: ScriptClient;
  readonly #prefix: string;
  readonly #timeout: number;

  /** `client`: the gateway's connection to its `redis:` (standalone, Sentinel or Cluster), made by the caller. */
  constructor(config: RedisConfig, client: Redis | Cluster) {
    this.#prefix = `${config.keyPrefix}idem:`;
    // A store step is on the request path of keyed requests only; a little more than a limiter check.
    this.#timeout = Math.max(config.commandTimeout, 250);
    client.on('error', () => {});
    client.defineCommand('idemBegin', { numberOfKeys: 1, lua: BEGIN });
    client.defineCommand('idemComplete', { numberOfKeys: 1, lua: COMPLETE });
    client.defineCommand('idemRelease', { numberOfKeys: 1, lua: RELEASE });
    this.client = client as ScriptClient;
  }

  /** Waits (bounded) for the first connection, so the first requests after start are not refused. */
  ready(timeoutMs: number): Promise<void> {
    return whenReady(this.client, timeoutMs);
  }

  async begin(key: string, fingerprint: string, leaseMs: number): Promise<BeginResult> {
    const token = leaseToken();
    const lease = JSON.stringify({ k: 'lease', t: token, f: fingerprint } satisfies LeaseRecord);
    const [value, pttl] = await this.#timed(this.client.idemBegin(this.#key(key), lease, Math.max(1, Math.round(leaseMs))));
    // The token is the lease value itself: complete/release compare the exact string Redis holds.
    if (value === '') return { kind: 'acquired', token: lease };
    const record = JSON.parse(value) as LeaseRecord | DoneRecord;
    if (record.k === 'lease') return { kind: 'in-flight', fingerprint: record.f, leaseLeftMs: Math.max(0, pttl) };
    return {
      kind: 'done',
      fingerprint: record.f,
      answer: { status: record.s, headers: record.h, body: Buffer.from(record.b, 'base64') },
    };
  }

  async complete(key: string, token: string, fingerprint: string, answer: StoredAnswer, ttlMs: number): Promise<void> {
    const lease = token;
    const record: DoneRecord = {
      k: 'done',
      f: fingerprint,
      s: answer.status,
      h: answer.headers.map(([name, value]) => [name, value]),
      b: answer.body.toString('base64'),
    };
    await this.#timed(this.client.idemComplete(this.#key(key), lease, JSON.stringify(record), Math.max(1, Math.round(ttlMs))));
  }

  async release(key: string, token: string): Promise<void> {
    await this.#timed(this.client.idemRelease(this.#key(key), token));
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }

  #key(key: string): string {
    return `${this.#prefix}{${key}}`;
  }

  #timed<T>(promise: Promise<T>): Promise<T> {
    return withTimeout(promise, this.#timeout, 'idempotency store');
  }
}
