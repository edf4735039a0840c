// The Redis store: two gateways share entries and purges; Redis down means the cache is
// skipped, never an error.

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { fetchAnswer } from './helpers/cache.js';
import { httpRequest } from './helpers/http.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { waitUntil } from './helpers/wait.js';

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  client.on('error', () => {});
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await closeAll(...open.splice(0));
});

async function replicas(count: number, prefix: string): Promise<{ backend: TestBackend; gateways: TestGateway[] }> {
  const backend = await startBackend((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
    res.end(`answer for ${req.url}`);
  });
  open.push(backend);
  const gateways: TestGateway[] = [];
  for (let i = 0; i < count; i++) {
    const gw = await startGateway(`
redis: { url: ${redis.url}, keyPrefix: "${prefix}", commandTimeout: 200ms }
upstreams:
  api: { backends: [ { url: ${backend.url} } ] }
routes:
  - name: cached
    upstream: api
    cache: { store: redis }
`);
    open.push(gw);
    gateways.push(gw);
  }
  return { backend, gateways };
}

describe('redis store', () => {
  it('two gateways share entries and purges', async () => {
    const { backend, gateways } = await replicas(2, 'share:');
    const [a, b] = gateways as [TestGateway, TestGateway];
    // Replicas behind one load balancer see the same Host (it is part of the key); node:http
    // because fetch will not send another Host.
    const get = async (url: string) => {
      const answer = await httpRequest(url, { headers: { host: 'api.example' } });
      return { ...answer, cacheStatus: String(answer.headers['cache-status']) };
    };
    const miss = await get(`${a.url}/items/1`);
    expect(miss.cacheStatus).toContain('stored');
    // Writes to Redis are fire-and-forget (after the client has its answer): wait for it.
    await waitUntil(() => client.keys('share:cache:/items/1*'), { until: (keys) => keys.length === 1, message: 'the entry in Redis' });
    const hit = await get(`${b.url}/items/1`);
    expect(hit.cacheStatus).toMatch(/^spillway; hit; ttl=\d+$/);
    expect(hit.body).toBe('answer for /items/1');
    expect(backend.received.filter((r) => r.url === '/items/1').length).toBe(1);

    const purge = await fetch(`${b.adminUrl}/admin/cache?prefix=/items/`, { method: 'DELETE' });
    expect(((await purge.json()) as { purged: { redis: number } }).purged.redis).toBe(1);
    const after = await get(`${a.url}/items/1`);
    expect(after.cacheStatus).toContain('uri-miss');
    expect(backend.received.filter((r) => r.url === '/items/1').length).toBe(2);
  });

  it('entries carry a TTL in Redis', async () => {
    const { gateways } = await replicas(1, 'ttl:');
    await fetchAnswer(`${gateways[0]!.url}/t`);
    {
      const keys = await waitUntil(() => client.keys('ttl:cache:/t*'), { until: (k) => k.length === 1, message: 'the entry in Redis' });
      const ttl = await client.pttl(keys[0]!);
      expect(ttl).toBeGreaterThan(50_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
  });

  it('an entry larger than maxBody never goes to Redis', async () => {
    const backend = await startBackend((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('y'.repeat(8192));
    });
    open.push(backend);
    const gw = await startGateway(`
redis: { url: ${redis.url}, keyPrefix: "cap:", commandTimeout: 200ms }
upstreams:
  api: { backends: [ { url: ${backend.url} } ] }
routes:
  - { name: small, match: { path: /small }, upstream: api, cache: { store: redis, maxBody: 16kb } }
  - { name: capped, upstream: api, cache: { store: redis, maxBody: 4kb } }
`);
    open.push(gw);
    // Big first: writes go in order on one connection, so once the small one is there the big one would be too.
    await fetchAnswer(`${gw.url}/big`);
    await fetchAnswer(`${gw.url}/small`);
    await waitUntil(() => client.keys('cap:cache:/small*'), { until: (keys) => keys.length === 1, message: 'the small entry' });
    expect(await client.keys('cap:cache:/big*')).toEqual([]);
  });

  it('Redis down: the cache is skipped, every request is answered by the backend', async () => {
    const { backend, gateways } = await replicas(1, 'down:');
    const gw = gateways[0]!;
    await fetchAnswer(`${gw.url}/d`);
    await redis.kill();
    try {
      for (let i = 0; i < 5; i++) {
        const answer = await fetchAnswer(`${gw.url}/d`);
        expect(answer.status).toBe(200);
        expect(answer.body).toBe('answer for /d');
      }
      expect(backend.received.length).toBe(6);
      const purge = await fetch(`${gw.adminUrl}/admin/cache?prefix=/`, { method: 'DELETE' });
      expect(purge.status).toBe(200);
    } finally {
      await redis.restart();
    }
  });
});

describe('memory stores with a root redis', () => {
  it('a purge on one replica reaches the memory stores of the others (pub/sub)', async () => {
    const backend = await startBackend((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`answer for ${req.url}`);
    });
    open.push(backend);
    const yaml = `
redis: { url: ${redis.url}, keyPrefix: "pubsub:", commandTimeout: 200ms }
upstreams:
  api: { backends: [ { url: ${backend.url} } ] }
routes:
  - { name: cached, upstream: api, cache: { store: memory } }
`;
    const a = await startGateway(yaml);
    const b = await startGateway(yaml);
    open.push(a, b);
    const entries = async (gw: TestGateway) =>
      ((await (await fetch(`${gw.adminUrl}/admin/routes`)).json()) as { routes: Array<{ cache: { entries: number } }> }).routes[0]!.cache
        .entries;
    await fetchAnswer(`${a.url}/p/1`);
    await fetchAnswer(`${b.url}/p/1`);
    await fetchAnswer(`${b.url}/q/1`);
    expect(await entries(b)).toBe(2);
    // B's subscription may still be starting right after listen: wait until it is in place.
    await waitUntil(async () => (await client.pubsub('NUMSUB', 'pubsub:cache:purge'))[1] === 2, { message: 'both replicas subscribed' });
    const purge = await fetch(`${a.adminUrl}/admin/cache?prefix=/p/`, { method: 'DELETE' });
    expect(await purge.json()).toEqual({ prefix: '/p/', purged: { memory: 1, redis: 0 } });
    await waitUntil(() => entries(b), { until: (n) => n === 1, message: "B's memory store purged" });
    expect((await fetchAnswer(`${b.url}/p/1`)).cacheStatus).toContain('uri-miss');
    expect((await fetchAnswer(`${b.url}/q/1`)).cacheStatus).toContain('hit');
  });
});
