// Redis failing under load: killed mid-load in each onRedisError mode, or hanging (CLIENT PAUSE).
// The gateway must not crash or hang (latency stays bounded), must behave as configured while
// Redis is gone, and must go back to Redis by itself within 2 s of Redis answering again.

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { burst, hit, limiterEvents, percentile, sleep, statusCounts, type LimiterEvents } from '../helpers/ratelimit.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';

let redis: TestRedis;
let backend: TestBackend;
let gateway: TestGateway | undefined;

beforeAll(async () => {
  backend = await startBackend();
});
afterAll(async () => {
  await backend.close();
});
afterEach(async () => {
  await closeAll(gateway);
  gateway = undefined;
  await redis?.stop();
});

const CAPACITY = 8;

async function setup(mode: 'open' | 'closed' | 'local', commandTimeout = '500ms'): Promise<{ gw: TestGateway; events: LimiterEvents }> {
  redis = await startRedis();
  const events = limiterEvents();
  gateway = await startGateway(
    `redis: { url: ${redis.url}, onRedisError: ${mode}, commandTimeout: ${commandTimeout}, breaker: { failures: 3, cooldown: 200ms } }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  global: { key: route, capacity: ${CAPACITY}, refill: 1/h }
routes:
  - { match: { path: / }, upstream: app, rateLimit: global }
`,
    { observer: events.observer },
  );
  return { gw: gateway, events };
}

interface Sample {
  at: number;
  status: number;
  ms: number;
}

/** Requests from `workers` loops until stop() — each result timestamped. */
function backgroundLoad(url: string, workers = 6) {
  const samples: Sample[] = [];
  const errors: unknown[] = [];
  let running = true;
  const done = Promise.all(
    Array.from({ length: workers }, async () => {
      while (running) {
        const started = performance.now();
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
          await response.arrayBuffer();
          samples.push({ at: started, status: response.status, ms: performance.now() - started });
        } catch (error) {
          errors.push(error);
        }
        await sleep(5);
      }
    }),
  );
  return {
    samples,
    errors,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

const between = (samples: Sample[], from: number, to: number) => samples.filter((s) => s.at >= from && s.at < to);

describe.each(['open', 'closed', 'local'] as const)('Redis killed mid-load, onRedisError: %s', (mode) => {
  it('no crash, no hang, behaves as configured, back on Redis within 2 s of its restart', async () => {
    const { gw, events } = await setup(mode);
    // exhaust the shared bucket while Redis is up
    const before = await burst(CAPACITY + 5, 4, () => hit(`${gw.url}/x`));
    expect(statusCounts(before)).toEqual({ 200: CAPACITY, 429: 5 });

    const load = backgroundLoad(`${gw.url}/x`);
    await sleep(200);
    const killedAt = performance.now();
    await redis.kill();
    await sleep(1000);
    const restartAt = performance.now();
    await redis.restart();
    const restartedAt = performance.now();
    // wait for the limiter to say it is back on Redis
    await waitUntil(() => events.degraded.some((e) => !e.degraded), {
      timeout: 5_000,
      message: 'the limiter to report it is back on Redis',
    });
    const recoveredAt = performance.now();
    await sleep(400);
    await load.stop();

    expect(load.errors).toEqual([]);
    const all = load.samples;
    expect(all.length).toBeGreaterThan(20);
    // bounded latency throughout: a dead Redis costs at most a command timeout (the bounds leave
    // room for a busy test machine; a hang would show as a 5 s client timeout, i.e. an error)
    expect(
      percentile(
        all.map((s) => s.ms),
        99,
      ),
    ).toBeLessThan(1_000);
    expect(Math.max(...all.map((s) => s.ms))).toBeLessThan(2_500);

    // degraded reported once; recovered within 2 s of Redis answering again
    expect(events.degraded[0]).toMatchObject({ degraded: true });
    expect(events.degraded[0]!.reason).toMatch(/^redis: /);
    const back = events.degraded.find((e) => !e.degraded);
    expect(back).toBeDefined();
    expect(recoveredAt - restartedAt).toBeLessThan(2_000);

    // while Redis was gone (after the first in-flight failures settled)
    const outage = between(all, killedAt + 50, restartAt);
    expect(outage.length).toBeGreaterThan(CAPACITY + 2);
    const counts = statusCounts(outage);
    if (mode === 'open') expect(counts).toEqual({ 200: outage.length });
    if (mode === 'closed') expect(counts).toEqual({ 503: outage.length });
    if (mode === 'local') {
      // a fresh in-process bucket: at most its capacity passes, the rest is limited
      expect(counts[200] ?? 0).toBeLessThanOrEqual(CAPACITY);
      expect((counts[200] ?? 0) + (counts[429] ?? 0)).toBe(outage.length);
      expect(counts[429]).toBeGreaterThan(0);
    }

    // after recovery Redis decides again: its (fresh, restarted) bucket fills up, then 429
    const client = new Redis(redis.url);
    try {
      expect(await client.keys('spillway:*')).toHaveLength(1);
    } finally {
      client.disconnect();
    }
    const after = await burst(CAPACITY + 10, 4, () => hit(`${gw.url}/x`));
    expect(statusCounts(after)[429]).toBeGreaterThan(0);
    expect(statusCounts(after)[503]).toBeUndefined();
  });
});

describe('Redis hanging', () => {
  it('slow round trips (commandTimeout) open the breaker; no request waits past hardTimeout', async () => {
    const { gw, events } = await setup('open', '100ms');
    expect((await hit(`${gw.url}/x`)).status).toBe(200);
    const client = new Redis(redis.url);
    try {
      await client.client('PAUSE', 1500, 'ALL');
      const during = await burst(40, 4, () => hit(`${gw.url}/x`));
      expect(statusCounts(during)).toEqual({ 200: 40 });
      // Redis is paused for 1.5 s: nobody waits for it longer than hardTimeout (500 ms), and once
      // the breaker is open (three slow round trips) not at all
      expect(Math.max(...during.map((h) => h.ms))).toBeLessThan(1_000);
      expect(events.degraded[0]).toMatchObject({ degraded: true });
      expect(events.degraded[0]!.reason).toMatch(/no reply (after waiting 100ms|within 500ms)/i);
      await client.client('UNPAUSE');
      // traffic lets the limiter notice that Redis answers again
      await waitUntil(
        async () => {
          await hit(`${gw.url}/x`);
          return events.degraded.some((e) => !e.degraded);
        },
        { interval: 50, message: 'the limiter to report it is back on Redis' },
      );
    } finally {
      client.disconnect();
    }
  });
});

describe('Redis down at start', () => {
  it('the gateway starts within about a second and serves per onRedisError', async () => {
    redis = await startRedis();
    const url = redis.url;
    await redis.kill();
    const events = limiterEvents();
    const started = performance.now();
    gateway = await startGateway(
      `redis: { url: ${url}, onRedisError: closed }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  global: { key: route, capacity: 5, refill: 1/h }
routes:
  - { match: { path: / }, upstream: app, rateLimit: global }
`,
      { observer: events.observer },
    );
    expect(performance.now() - started).toBeLessThan(3_000);
    const refused = await hit(`${gateway.url}/x`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(refused.body)).toMatchObject({ type: 'urn:spillway:problem:rate-limiter-unavailable', policy: 'global' });
    await redis.restart();
    const status = await waitUntil(async () => (await hit(`${gateway!.url}/x`)).status, {
      until: (s) => s !== 503,
      interval: 50,
      message: 'an answer other than 503 after Redis restarted',
    });
    expect(status).toBe(200);
  });
});

describe('a client that leaves during the check', () => {
  it('is not forwarded, and the gateway still stops at once', async () => {
    const { gw } = await setup('open', '300ms');
    const client = new Redis(redis.url);
    try {
      await client.client('PAUSE', 600, 'ALL');
      // the check waits for Redis (up to 300 ms); the client gives up after 100 ms
      await expect(fetch(`${gw.url}/leaving`, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
      await sleep(500);
      expect(backend.received.filter((r) => r.url === '/leaving')).toHaveLength(0);
      const started = performance.now();
      await gateway!.close();
      gateway = undefined;
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      client.disconnect();
    }
  });
});
