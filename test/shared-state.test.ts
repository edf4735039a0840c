// Replicas share backend state through a real redis-server: a cooldown, a drain, a breaker
// opening and health-probe results learnt by one gateway reach the others; Redis gone, each goes
// on alone; Redis back, the pictures merge.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { httpRequest } from './helpers/http.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { sleep, waitUntil } from './helpers/wait.js';

let redis: TestRedis;
let gateways: TestGateway[] = [];
let backends: TestBackend[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await closeAll(...gateways, ...backends);
  gateways = [];
  backends = [];
});

let prefixCount = 0;
async function replicas(count: number, yaml: (prefix: string) => string): Promise<TestGateway[]> {
  const prefix = `t${process.pid}-${prefixCount++}:`;
  for (let i = 0; i < count; i++) gateways.push(await startGateway(yaml(prefix)));
  return gateways;
}

/** A backend that answers 429 retry-after-ms: 5000 while `busy` is set. */
async function throttling(): Promise<TestBackend & { busy: boolean }> {
  const state = { busy: true };
  const backend = await startBackend((_req, res) => {
    if (state.busy) {
      res.writeHead(429, { 'retry-after-ms': '5000' });
      res.end('busy');
    } else res.end('a');
  }, 'a');
  return Object.assign(backend, state);
}

const config = (a: string, b: string, redisLine: string) => `
${redisLine}
upstreams:
  pool:
    backends:
      - { name: a, url: ${a}, priority: 1 }
      - { name: b, url: ${b}, priority: 2 }
routes:
  - { match: { path: / }, upstream: pool }
`;

const backendView = async (gw: TestGateway, name: string) => {
  const view = JSON.parse((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).body);
  return view.upstreams.pool.backends.find((b: { name: string }) => b.name === name);
};

describe('shared backend state through Redis', () => {
  it('a cooldown learnt by one replica reaches the others within 50 ms', async () => {
    const a = await throttling();
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const [one, two, three] = await replicas(3, (prefix) => config(a.url, b.url, `redis: { url: "${redis.url}", keyPrefix: "${prefix}" }`));
    const first = await httpRequest(`${one!.url}/x`);
    expect(first.status).toBe(200); // failed over to b
    const throttledAt = a.received[0]!.at;
    await sleep(50);
    for (const gw of [two!, three!]) {
      expect(await backendView(gw, 'a')).toMatchObject({ state: 'cooling' });
      for (let i = 0; i < 5; i++) expect((await httpRequest(`${gw.url}/y`)).status).toBe(200);
    }
    expect(a.received).toHaveLength(1);
    expect(a.received[0]!.at).toBe(throttledAt);
    const remaining = (await backendView(two!, 'a')).cooldownRemainingMs;
    expect(remaining).toBeGreaterThan(4_000);
    expect(remaining).toBeLessThanOrEqual(5_000);
  });

  it('a replica that starts later reads the stored cooldown and drain', async () => {
    const a = await throttling();
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const prefix = `late${process.pid}:`;
    const yaml = config(a.url, b.url, `redis: { url: "${redis.url}", keyPrefix: "${prefix}" }`);
    const first = await startGateway(yaml);
    gateways.push(first);
    await httpRequest(`${first.url}/x`);
    await httpRequest(`${first.adminUrl}/admin/backends/pool:b/drain`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    await sleep(20);
    const late = await startGateway(yaml);
    gateways.push(late);
    expect(await backendView(late, 'a')).toMatchObject({ state: 'cooling' });
    expect(await backendView(late, 'b')).toMatchObject({ adminMode: 'drain' });
  });

  // The 50 ms figure is measured with four replicas in test/system/scale-out-replicas.test.ts; here, on a
  // machine running the whole fast suite at once, the drain is awaited on replica two's own view. Drained
  // right after start, this also catches a start-up read that lands after the news and undoes it.
  it('a drain through one replica stops every replica', async () => {
    const a = await startBackend(undefined, 'a');
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const [one, two] = await replicas(2, (prefix) => config(a.url, b.url, `redis: { url: "${redis.url}", keyPrefix: "${prefix}" }`));
    const drained = await httpRequest(`${one!.adminUrl}/admin/backends/pool:a/drain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    expect(drained.status).toBe(200);
    await waitUntil(async () => (await backendView(two!, 'a')).adminMode === 'drain', { message: 'the drain to reach replica two' });
    for (let i = 0; i < 5; i++) expect(JSON.parse((await httpRequest(`${two!.url}/y`)).body).backend).toBe('b');
    expect(a.received).toHaveLength(0);
    await httpRequest(`${two!.adminUrl}/admin/backends/pool:a/enable`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    await waitUntil(async () => (await backendView(one!, 'a')).adminMode === 'active', { message: 'enable to reach replica one' });
  });

  it('shareState: false keeps each replica to its own picture', async () => {
    const a = await throttling();
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const [one, two] = await replicas(2, (prefix) =>
      config(a.url, b.url, `redis: { url: "${redis.url}", keyPrefix: "${prefix}", shareState: false }`),
    );
    await httpRequest(`${one!.url}/x`);
    await sleep(100);
    expect(await backendView(two!, 'a')).toMatchObject({ state: 'ready' });
    await httpRequest(`${two!.url}/x`);
    expect(a.received).toHaveLength(2);
  });

  it('a breaker opening is shared: the other replicas do not spend minRequests failures learning it', async () => {
    const a = await startBackend((_req, res) => {
      res.writeHead(500);
      res.end('a');
    }, 'a');
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const [one, two, three] = await replicas(
      3,
      (prefix) => `
redis: { url: "${redis.url}", keyPrefix: "${prefix}" }
upstreams:
  pool:
    breaker: { minRequests: 3, failureRate: 0.5, openFor: 10s }
    backends:
      - { name: a, url: ${a.url}, priority: 1 }
      - { name: b, url: ${b.url}, priority: 2 }
routes:
  - { match: { path: / }, upstream: pool }
`,
    );
    for (let i = 0; i < 3; i++) await httpRequest(`${one!.url}/x`);
    expect((await backendView(one!, 'a')).breaker.state).toBe('open');
    await sleep(50);
    for (const gw of [two!, three!]) expect((await backendView(gw, 'a')).breaker.state).toBe('open');
    for (const gw of [two!, three!]) expect(JSON.parse((await httpRequest(`${gw.url}/y`)).body).backend).toBe('b');
    // minRequests failures once for all three replicas, not three times.
    console.log(`failures sent to the broken backend by 3 replicas: ${a.received.length} (without sharing: 9)`);
    expect(a.received).toHaveLength(3);
  });

  it('health checks: one replica probes per interval (a Redis lease), the others read its results', async () => {
    let healthy = true;
    const a = await startBackend((_req, res) => {
      res.writeHead(healthy ? 200 : 503);
      res.end('a');
    }, 'a');
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const [one, two, three] = await replicas(
      3,
      (prefix) => `
redis: { url: "${redis.url}", keyPrefix: "${prefix}" }
upstreams:
  pool:
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 2 }
    backends:
      - { name: a, url: ${a.url}, priority: 1 }
      - { name: b, url: ${b.url}, priority: 2 }
routes:
  - { match: { path: / }, upstream: pool }
`,
    );
    const probes = () => a.received.filter((r) => r.url === '/health').length;
    await sleep(300);
    const start = probes();
    await sleep(2_000);
    // Three replicas, one lease: about one probe per 200 ms interval (10), not three per interval (30).
    const count = probes() - start;
    console.log(`health probes by 3 replicas sharing a lease, 200 ms interval, 2 s: ${count} (alone each: ~30)`);
    expect(count).toBeGreaterThanOrEqual(6);
    expect(count).toBeLessThanOrEqual(14);
    healthy = false;
    for (const gw of [one!, two!, three!])
      await waitUntil(async () => (await backendView(gw, 'a')).state === 'unhealthy', { message: 'every replica to see a unhealthy' });
    for (const gw of [one!, two!, three!]) expect(JSON.parse((await httpRequest(`${gw.url}/y`)).body).backend).toBe('b');
  });

  it('Redis gone: every replica goes on alone with no slower request; back: the pictures merge', async () => {
    const a = await throttling();
    const b = await startBackend(undefined, 'b');
    backends = [a, b];
    const [one, two] = await replicas(2, (prefix) => config(a.url, b.url, `redis: { url: "${redis.url}", keyPrefix: "${prefix}" }`));
    await redis.kill();
    const started = Date.now();
    let slowest = 0;
    for (let i = 0; i < 20; i++) {
      const t = Date.now();
      const answer = await httpRequest(`${(i % 2 ? one : two)!.url}/x`);
      expect(answer.status).toBe(200);
      slowest = Math.max(slowest, Date.now() - t);
    }
    expect(slowest).toBeLessThan(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    // Each replica learnt the cooldown itself: two 429s, one per replica.
    expect(a.received).toHaveLength(2);
    // A drain while Redis is down applies locally and is written when Redis is back.
    await httpRequest(`${one!.adminUrl}/admin/backends/pool:b/drain`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(await backendView(two!, 'b')).toMatchObject({ adminMode: 'active' });
    await redis.restart();
    await waitUntil(async () => (await backendView(two!, 'b')).adminMode === 'drain', {
      message: 'the drain to merge after Redis came back',
    });
  });
});
