// `redis: { cluster: [...] }`: the same checks through ioredis' Cluster client (hash-tagged keys
// route each bucket to its slot).

import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { hit, limiterEvents, startRedisCluster } from '../helpers/ratelimit.js';

let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
let backend: TestBackend;
let gateways: TestGateway[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  backend = await startBackend();
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await backend.close();
  await cluster.stop();
});

describe('redis cluster', () => {
  it('two gateways share buckets through a cluster; keys carry their hash tag', async () => {
    const events = limiterEvents();
    const yaml = `redis: { cluster: ["127.0.0.1:${cluster.port}"], keyPrefix: "c:", commandTimeout: 1s }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  per-key: { key: header:x-api-key, capacity: 3, refill: 1/h }
routes:
  - { match: { path: / }, upstream: app, rateLimit: per-key }
`;
    gateways = [await startGateway(yaml, { observer: events.observer }), await startGateway(yaml)];
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await hit(`${gateways[i % 2]!.url}/x`, { 'x-api-key': 'k' })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect((await hit(`${gateways[0]!.url}/x`, { 'x-api-key': 'other' })).status).toBe(200);
    expect(events.degraded).toEqual([]);

    const client = new Cluster([{ host: '127.0.0.1', port: cluster.port }]);
    try {
      const keys = await client.keys('c:*');
      expect(keys).toHaveLength(2);
      for (const key of keys) {
        const tag = /\{([^}]+)\}/.exec(key)![1]!;
        expect(await client.cluster('KEYSLOT', key)).toBe(await client.cluster('KEYSLOT', `{${tag}}`));
      }
    } finally {
      client.disconnect();
    }
  });
});
