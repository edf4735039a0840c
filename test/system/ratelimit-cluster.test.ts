// `redis: { cluster: [...] }` on a real six-node Redis Cluster (three masters, three replicas):
// buckets hash-tagged onto one slot each, bursts over two gateway processes exact per key across
// slots, and a master killed under load — onRedisError holds, nothing crashes or hangs, and the
// limits are exact again within seconds of its replica taking over (EVALSHA on the promoted
// replica, which has never seen the script, falls back to EVAL).

import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startCli, writeTempConfig, type CliGateway } from '../helpers/gateway.js';
import { sleep } from '../helpers/ratelimit.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { waitUntil } from '../helpers/wait.js';

let cluster: TestRedisCluster;
let backend: TestBackend;
let clis: CliGateway[] = [];
const agent = new Agent({ connections: 300, keepAliveTimeout: 10_000 });

beforeAll(async () => {
  cluster = await startRedisCluster();
  backend = await startBackend();
});
afterEach(async () => {
  await Promise.all(clis.map((cli) => cli.stop()));
  clis = [];
});
afterAll(async () => {
  await agent.close();
  await backend.close();
  await cluster.stop();
});

async function gateways(count: number, capacity: number, onRedisError: 'local' | 'closed' | 'open'): Promise<CliGateway[]> {
  const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
redis: { cluster: [${cluster.seeds.map((seed) => `"${seed}"`).join(', ')}], keyPrefix: "c:", onRedisError: ${onRedisError} }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  per-key: { key: header:x-api-key, capacity: ${capacity}, refill: 1/h }
routes:
  - { match: { path: / }, upstream: app, rateLimit: per-key }
`);
  clis = await Promise.all(Array.from({ length: count }, () => startCli(file)));
  return clis;
}

/** The Redis key of an API key's bucket (as src/ratelimit/redis-store.ts names it). */
const bucketKey = (apiKey: string) => `c:{per-key:${createHash('sha256').update(apiKey).digest('base64url').slice(0, 22)}}`;

async function send(url: string, apiKey: string): Promise<number> {
  try {
    const response = await fetch(`${url}/x`, {
      headers: { 'x-api-key': apiKey },
      dispatcher: agent,
      signal: AbortSignal.timeout(10_000),
    } as RequestInit);
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/** API keys whose buckets live on at least two different masters. */
async function keysAcrossMasters(prefix: string, count: number): Promise<string[]> {
  const keys: string[] = [];
  const masters = new Set<number>();
  for (let i = 0; keys.length < count; i++) {
    const apiKey = `${prefix}-${i}`;
    const master = await cluster.masterOf(bucketKey(apiKey));
    if (keys.length < count - 1 || masters.size >= 2 || !masters.has(master)) {
      keys.push(apiKey);
      masters.add(master);
    }
  }
  expect(masters.size).toBeGreaterThanOrEqual(2);
  return keys;
}

describe('redis cluster (six nodes)', () => {
  it('buckets are hash-tagged onto one slot and shared by two gateways', async () => {
    const [a, b] = await gateways(2, 3, 'local');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await send((i % 2 ? b! : a!).url, 'k'));
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(await send(a!.url, 'other')).toBe(200);
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }]);
    try {
      for (const apiKey of ['k', 'other']) {
        const key = bucketKey(apiKey);
        expect(await client.exists(key)).toBe(1);
        const tag = /\{([^}]+)\}/.exec(key)![1]!;
        expect(await client.cluster('KEYSLOT', key)).toBe(await client.cluster('KEYSLOT', `{${tag}}`));
      }
    } finally {
      client.disconnect();
    }
  });

  it('600 concurrent requests over 6 keys and 2 gateways, capacity 50: 49–51 allowed per key', async () => {
    const [a, b] = await gateways(2, 50, 'local');
    await Promise.all(Array.from({ length: 100 }, (_, i) => send((i % 2 ? b! : a!).url, `warm-${i % 10}`)));
    const keys = await keysAcrossMasters('burst', 6);
    const statuses = await Promise.all(Array.from({ length: 600 }, (_, i) => send((i % 2 ? b! : a!).url, keys[i % 6]!)));
    const allowed = keys.map((_, k) => statuses.filter((status, i) => i % 6 === k && status === 200).length);
    console.log('allowed per key', allowed);
    expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([]);
    for (const count of allowed) {
      expect(count).toBeGreaterThanOrEqual(49);
      expect(count).toBeLessThanOrEqual(51);
    }
  });

  it('a master killed under load: onRedisError closed holds, no crash, exact again after the failover', async () => {
    const [a, b] = await gateways(2, 20, 'closed');
    const keys = await keysAcrossMasters('load', 6);
    const victim = keys[0]!;
    const statuses: Array<{ at: number; status: number; ms: number }> = [];
    let running = true;
    const load = Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = 0; running; i++) {
          const started = performance.now();
          const status = await send((worker % 2 ? b! : a!).url, `${keys[(worker + i) % 6]!}-steady-${i % 50}`);
          statuses.push({ at: started, status, ms: performance.now() - started });
          await sleep(5);
        }
      }),
    );
    await sleep(500);
    const killed = await cluster.killMasterOf(bucketKey(victim));
    const killedAt = performance.now();
    // the replica is promoted (node timeout 1 s + election), then every node says ok
    await waitUntil(async () => (await cluster.masterOf(bucketKey(victim))) !== killed, {
      timeout: 20_000,
      interval: 100,
      message: 'a replica to take over the killed master',
    });
    await cluster.waitHealthy();
    const healedAt = performance.now();
    // exact again within a few seconds of the replica taking over: a fresh key on the failed-over
    // slot gets exactly its capacity over both gateways
    let fresh: string | undefined;
    for (let i = 0; !fresh; i++)
      if ((await cluster.masterOf(bucketKey(`fresh-${i}`))) === (await cluster.masterOf(bucketKey(victim)))) fresh = `fresh-${i}`;
    let exactAt = 0;
    for (let attempt = 0; attempt < 20 && !exactAt; attempt++) {
      const burstKey = `${fresh}-${attempt}`;
      if ((await cluster.masterOf(bucketKey(burstKey))) !== (await cluster.masterOf(bucketKey(victim)))) continue;
      const got = await Promise.all(Array.from({ length: 60 }, (_, i) => send((i % 2 ? b! : a!).url, burstKey)));
      if (got.filter((s) => s === 200).length === 20 && got.filter((s) => s === 429).length === 40) exactAt = performance.now();
      else await sleep(250);
    }
    running = false;
    await load;
    console.log('failover', { healedAfterMs: Math.round(healedAt - killedAt), exactAfterMs: Math.round(exactAt - killedAt) });
    expect(exactAt).toBeGreaterThan(0);
    expect(exactAt - healedAt).toBeLessThan(5_000);
    // both gateways still up; every answer was a decision (onRedisError closed: 503, never 500 or a hang)
    expect(clis.every((cli) => cli.child.exitCode === null)).toBe(true);
    expect(statuses.filter((s) => ![200, 429, 503].includes(s.status))).toEqual([]);
    expect(Math.max(...statuses.map((s) => s.ms))).toBeLessThan(2_500);
    expect(statuses.some((s) => s.status === 503 && s.at >= killedAt)).toBe(true);
  });
});
