// The Redis store: same arithmetic as memory, hash-tagged keys with a TTL, the script reloaded
// after NOSCRIPT, and buckets shared exactly by several gateways (in-process and 4 real CLI
// processes) on one Redis.

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startCli, startGateway, writeTempConfig, type CliGateway, type TestGateway } from './helpers/gateway.js';
import { burst, hit, limiterEvents, statusCounts } from './helpers/ratelimit.js';
import { startRedis, type TestRedis } from './helpers/redis.js';

let redis: TestRedis;
let client: Redis;
let backend: TestBackend;
let gateways: TestGateway[] = [];
let clis: CliGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { lazyConnect: false });
  backend = await startBackend();
});
afterAll(async () => {
  client.disconnect();
  await backend.close();
  await redis.stop();
});
afterEach(async () => {
  await closeAll(...gateways);
  await Promise.all(clis.map((cli) => cli.stop()));
  gateways = [];
  clis = [];
  await client.flushall();
});

function yaml(policies: string, route: string, redisExtra = ''): string {
  return `redis: { url: ${redis.url}, keyPrefix: "test:", commandTimeout: 1s${redisExtra} }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
rateLimits:
${policies}
routes:
  - name: api
    match: { path: / }
    upstream: app
    rateLimit: ${route}
`;
}

async function gatewayOn(text: string, options: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  const gateway = await startGateway(text, options);
  gateways.push(gateway);
  return gateway;
}

describe('redis store', () => {
  it('burst, cost and exact headers, decided by Redis', async () => {
    const events = limiterEvents();
    const gw = await gatewayOn(yaml('  per-key: { key: header:x-api-key, capacity: 20, refill: 1/s, cost: 2 }', 'per-key'), {
      observer: events.observer,
    });
    const first = await hit(`${gw.url}/x`, { 'x-api-key': 'k' });
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"per-key";q=20;w=20');
    expect(first.headers.get('ratelimit')).toBe('"per-key";r=18;t=2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('18');
    const rest = await burst(15, 3, () => hit(`${gw.url}/x`, { 'x-api-key': 'k' }));
    // 9 more pass (18 tokens / 2), plus whatever refilled while they ran (a token per second)
    const passed = rest.filter((h) => h.status === 200).length;
    expect(passed).toBeGreaterThanOrEqual(9);
    expect(passed).toBeLessThanOrEqual(10);
    const refused = rest.find((h) => h.status === 429)!;
    expect(refused.headers.get('retry-after')).toMatch(/^[12]$/);
    expect(refused.headers.get('x-ratelimit-remaining')).toMatch(/^[01]$/);
    expect(JSON.parse(refused.body)).toMatchObject({ type: 'urn:spillway:problem:client-rate-limited', policy: 'per-key' });
    expect(events.degraded).toEqual([]);
  });

  it('keys are prefixed and hash-tagged, hold no raw API key, and expire once the bucket would be full', async () => {
    const gw = await gatewayOn(yaml('  per-key: { key: header:x-api-key, capacity: 10, refill: 5/s }', 'per-key'));
    await hit(`${gw.url}/x`, { 'x-api-key': 'secret-api-key-1' });
    const keys = await client.keys('*');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^test:\{per-key:[A-Za-z0-9_-]{22}\}$/);
    expect(keys[0]).not.toContain('secret-api-key-1');
    const ttl = await client.pttl(keys[0]!);
    // one token short: full in 200 ms, plus one second
    expect(ttl).toBeGreaterThan(500);
    expect(ttl).toBeLessThanOrEqual(1200);
    const state = await client.hgetall(keys[0]!);
    expect(Number(state.tokens)).toBe(9);
  });

  it('after SCRIPT FLUSH (NOSCRIPT) the script is loaded again and checks go on', async () => {
    const events = limiterEvents();
    const gw = await gatewayOn(yaml('  p: { key: route, capacity: 3, refill: 1/h }', 'p'), { observer: events.observer });
    expect((await hit(`${gw.url}/x`)).status).toBe(200);
    await client.script('FLUSH');
    expect((await hit(`${gw.url}/x`)).status).toBe(200);
    expect((await hit(`${gw.url}/x`)).status).toBe(200);
    expect((await hit(`${gw.url}/x`)).status).toBe(429);
    expect(events.decisions.map((d) => d.result)).toEqual(['allowed', 'allowed', 'allowed', 'limited']);
    expect(events.degraded).toEqual([]);
  });

  it('queue mode holds requests on the Redis clock', async () => {
    const gw = await gatewayOn(yaml('  q: { key: route, capacity: 1, refill: 2/s, mode: queue, maxWait: 1200ms }', 'q'));
    const results = await Promise.all(Array.from({ length: 5 }, () => hit(`${gw.url}/x`)));
    // now, +500 ms, +1 s; +1.5 s and +2 s are past maxWait
    expect(statusCounts(results)).toEqual({ 200: 3, 429: 2 });
    const slowest = Math.max(...results.filter((r) => r.status === 200).map((r) => r.ms));
    expect(slowest).toBeGreaterThan(950);
  });

  it('store: memory keeps one policy in process while the others use Redis', async () => {
    const text = yaml('  local-only: { key: route, capacity: 2, refill: 1/h, store: memory }', 'local-only');
    const a = await gatewayOn(text);
    const b = await gatewayOn(text);
    const passed = async (gw: TestGateway) => (await burst(4, 1, () => hit(`${gw.url}/x`))).filter((h) => h.status === 200).length;
    expect(await passed(a)).toBe(2);
    expect(await passed(b)).toBe(2);
    expect(await client.keys('*')).toEqual([]);
  });
});

describe('replicas share buckets', () => {
  it('two gateways on one Redis draw from the same bucket', async () => {
    const text = yaml('  per-key: { key: header:x-api-key, capacity: 10, refill: 1/h }', 'per-key');
    const a = await gatewayOn(text);
    const b = await gatewayOn(text);
    const results = await burst(30, 6, (i) => hit(`${(i % 2 ? a : b).url}/x`, { 'x-api-key': 'shared' }));
    expect(statusCounts(results)).toEqual({ 200: 10, 429: 20 });
  });

  it('4 gateway processes, concurrent clients: the total allowed is what the bucket permits (±1%)', async () => {
    const capacity = 60;
    const perSecond = 10;
    const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
${yaml(`  global: { key: route, capacity: ${capacity}, refill: ${perSecond}/s }`, 'global')}`);
    clis = await Promise.all([0, 1, 2, 3].map(() => startCli(file)));

    // warm every process's connections; then one request creates the bucket, and the test sets
    // it to half full at a known Redis time (half full: the capacity cap never discards refill)
    await Promise.all(clis.map(async (cli) => (await fetch(`${cli.url}/warm-up`)).arrayBuffer()));
    await client.flushall();
    expect((await fetch(`${clis[0]!.url}/x`)).status).toBe(200);
    const key = (await client.keys('test:*'))[0]!;
    const [seconds, micros] = await client.time();
    const firstAt = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const startTokens = capacity / 2;
    await client.hset(key, 'tokens', String(startTokens), 'at', String(firstAt));
    let allowed = 0;
    let refused = 0;
    let other = 0;
    // at least 1.5 s and well past the limit (a busy machine serves fewer requests per second)
    const started = performance.now();
    const more = () => performance.now() - started < 1500 || (refused < 50 && performance.now() - started < 8000);
    await Promise.all(
      Array.from({ length: 24 }, async (_, worker) => {
        const url = `${clis[worker % 4]!.url}/x`;
        while (more()) {
          const response = await fetch(url);
          await response.arrayBuffer();
          if (response.status === 200) allowed++;
          else if (response.status === 429) refused++;
          else other++;
        }
      }),
    );
    const last = await client.hgetall(key);
    // every token the bucket held or gained between its first and its last check, less what is left
    const permitted = startTokens + ((Number(last.at) - firstAt) * perSecond) / 1000 - Math.max(0, Number(last.tokens));
    // no replica fell back to local buckets (which would not be shared)
    expect(clis.flatMap((cli) => cli.lines.filter((line) => line.event === 'limiter.degraded'))).toEqual([]);
    expect(other).toBe(0);
    expect(refused).toBeGreaterThanOrEqual(30); // the clients really pushed past the limit
    expect(Number(last.at) - firstAt).toBeGreaterThan(1000);
    expect(Math.abs(allowed - permitted)).toBeLessThanOrEqual(permitted * 0.01);
  });
});
