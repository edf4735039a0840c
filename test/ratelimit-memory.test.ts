// Client rate limits with the in-memory store: bucket arithmetic (burst, refill, cost, tiers),
// exact response headers, several policies on one route, queue mode, and the memory store's
// exactness under concurrent clients.

import { describe, expect, it } from 'vitest';
import { startBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { burst, hit, limiterEvents, sleep, statusCounts, statusesInTurn } from './helpers/ratelimit.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

async function start(policies: string, routeLimit: string, options: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  live.backend = await startBackend();
  live.gateway = await startGateway(
    `upstreams:
  app:
    backends: [ { url: ${live.backend.url} } ]
rateLimits:
${policies}
routes:
  - name: api
    match: { path: /v1/ }
    upstream: app
    rateLimit: ${routeLimit}
  - name: open
    match: { path: / }
    upstream: app
`,
    options,
  );
  return live.gateway;
}

/** One policy under `rateLimits:`; `extra` are more of its keys, one YAML line each. */
function policy(name: string, key: string, capacity: number, refill: string, extra: string[] = []): string {
  return [`  ${name}:`, `key: ${key}`, `capacity: ${capacity}`, `refill: ${refill}`, ...extra].join('\n    ');
}

describe('token bucket: burst, refill, cost', () => {
  it('allows the burst, then 429 with Retry-After and a problem naming the policy; the backend never sees the refused ones', async () => {
    const gw = await start(policy('per-key', 'header:x-api-key', 3, '1/h'), 'per-key');
    expect(await statusesInTurn(5, () => hit(`${gw.url}/v1/chat`, { 'x-api-key': 'k1' }))).toEqual([200, 200, 200, 429, 429]);
    expect(live.backend!.received).toHaveLength(3);

    const refused = await hit(`${gw.url}/v1/chat`, { 'x-api-key': 'k1' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    // one token per hour: the next one is due in 3600 s
    expect(refused.headers.get('retry-after')).toBe('3600');
    const problem = JSON.parse(refused.body) as Record<string, unknown>;
    expect(problem).toMatchObject({ type: 'urn:spillway:problem:client-rate-limited', status: 429, policy: 'per-key' });
    expect(problem.retryAfterMs).toBeGreaterThan(3_599_000);

    // another client has its own bucket; an unlimited route is untouched
    expect((await hit(`${gw.url}/v1/chat`, { 'x-api-key': 'k2' })).status).toBe(200);
    const open = await hit(`${gw.url}/other`, { 'x-api-key': 'k1' });
    expect(open.status).toBe(200);
    expect(open.headers.get('ratelimit')).toBeNull();
  });

  it('refills at the configured rate', async () => {
    const gw = await start(policy('per-key', 'header:x-api-key', 2, '2/s'), 'per-key');
    // concurrent sends land within a few ms of each other: well under a token's 500 ms
    const send = async (n: number) =>
      statusCounts(await Promise.all(Array.from({ length: n }, () => hit(`${gw.url}/v1/x`, { 'x-api-key': 'k' }))));
    expect(await send(3)).toEqual({ 200: 2, 429: 1 });
    await sleep(600); // one token back
    expect(await send(2)).toEqual({ 200: 1, 429: 1 });
    await sleep(1_200); // full again, capped at 2
    expect(await send(3)).toEqual({ 200: 2, 429: 1 });
  });

  it('a request costs `cost` tokens', async () => {
    const gw = await start(policy('heavy', 'header:x-api-key', 10, '1/h', ['cost: 4']), 'heavy');
    expect(await statusesInTurn(3, () => hit(`${gw.url}/v1/x`, { 'x-api-key': 'k' }))).toEqual([200, 200, 429]); // 10 → 6 → 2, then 2 < 4
  });

  it('tiers give listed keys their own capacity and refill', async () => {
    const gw = await start(
      policy('per-key', 'header:x-api-key', 2, '1/h', ['tiers:', '  gold: { keys: [key-gold-1, key-gold-2], capacity: 5 }']),
      'per-key',
    );
    const count = async (key: string) =>
      (await statusesInTurn(8, () => hit(`${gw.url}/v1/x`, { 'x-api-key': key }))).filter((status) => status === 200).length;
    expect(await count('plain')).toBe(2);
    expect(await count('key-gold-1')).toBe(5);
    expect(await count('key-gold-2')).toBe(5);
    const last = await hit(`${gw.url}/v1/x`, { 'x-api-key': 'key-gold-2' });
    expect(last.headers.get('ratelimit-policy')).toBe('"per-key";q=5;w=18000');
  });
});

describe('response headers', () => {
  it('exact IETF draft and X-RateLimit fields on 2xx and 429', async () => {
    const gw = await start(policy('per-key', 'header:x-api-key', 20, '2/s'), 'per-key');
    const first = await hit(`${gw.url}/v1/x`, { 'x-api-key': 'k' });
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"per-key";q=20;w=10');
    expect(first.headers.get('ratelimit')).toBe('"per-key";r=19;t=1');
    expect(first.headers.get('x-ratelimit-limit')).toBe('20');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('19');
    expect(first.headers.get('x-ratelimit-reset')).toBe('1');

    const rest = await burst(25, 5, () => hit(`${gw.url}/v1/x`, { 'x-api-key': 'k' }));
    const refused = rest.find((h) => h.status === 429)!;
    expect(refused).toBeDefined();
    expect(refused.headers.get('ratelimit-policy')).toBe('"per-key";q=20;w=10');
    expect(refused.headers.get('ratelimit')).toBe('"per-key";r=0;t=10');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('retry-after')).toBe('1');
  });

  it('gateway fields win over a backend that sends its own', async () => {
    live.backend = await startBackend((_req, res) => {
      res.writeHead(200, { 'x-ratelimit-remaining': '999', ratelimit: 'backend', 'x-other': 'kept' });
      res.end('ok');
    });
    live.gateway = await startGateway(`upstreams:
  app:
    backends: [ { url: ${live.backend.url} } ]
rateLimits:
  whole-route: { key: route, capacity: 5, refill: 1/h }
routes:
  - match: { path: / }
    upstream: app
    rateLimit: whole-route
`);
    const response = await hit(`${live.gateway.url}/x`);
    expect(response.headers.get('x-ratelimit-remaining')).toBe('4');
    expect(response.headers.get('ratelimit')).toBe('"whole-route";r=4;t=3600');
    expect(response.headers.get('x-other')).toBe('kept');
  });
});

describe('several policies on one route', () => {
  it('per-key and a global cap: both must allow; a refused request takes no token from the others', async () => {
    const gw = await start(
      `${policy('per-key', 'header:x-api-key', 3, '1/h')}\n${policy('global', 'route', 5, '1/h')}`,
      '[per-key, global]',
    );
    const send = (key: string) => hit(`${gw.url}/v1/x`, { 'x-api-key': key });
    expect(await statusesInTurn(4, () => send('a'))).toEqual([200, 200, 200, 429]); // per-key refuses the 4th; global keeps 2 tokens
    const both = await send('b');
    expect(both.headers.get('ratelimit-policy')).toBe('"per-key";q=3;w=10800, "global";q=5;w=18000');
    expect(both.headers.get('ratelimit')).toBe('"per-key";r=2;t=3600, "global";r=1;t=14400');
    expect(both.headers.get('x-ratelimit-limit')).toBe('5'); // the tightest: global, 1 left
    expect(both.headers.get('x-ratelimit-remaining')).toBe('1');
    expect((await send('b')).status).toBe(200);
    const capped = await send('b');
    expect(capped.status).toBe(429);
    expect(JSON.parse(capped.body)).toMatchObject({ policy: 'global' });
    expect(live.backend!.received).toHaveLength(5);
  });
});

describe('queue mode', () => {
  it('holds a request until its token is due when that is within maxWait, else 429', async () => {
    const events = limiterEvents();
    const gw = await start(policy('smooth', 'route', 1, '2/s', ['mode: queue', 'maxWait: 1200ms']), 'smooth', {
      observer: events.observer,
    });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 5 }, () => hit(`${gw.url}/v1/x`)));
    const elapsed = performance.now() - started;
    // 1 now, then one every 500 ms: 500 ms and 1 s are within maxWait, 1.5 s and 2 s are not
    expect(statusCounts(results)).toEqual({ 200: 3, 429: 2 });
    const served = results
      .filter((r) => r.status === 200)
      .map((r) => r.ms)
      .sort((a, b) => a - b);
    expect(served[1]!).toBeGreaterThan(450);
    expect(served[2]!).toBeGreaterThan(950);
    expect(elapsed).toBeLessThan(4000);
    expect(events.decisions.filter((d) => d.result === 'queued')).toHaveLength(2);
    expect(events.decisions.filter((d) => d.result === 'limited')).toHaveLength(2);
  });
});

describe('memory store under concurrency', () => {
  it('is exact in one process: concurrent clients get exactly the capacity', async () => {
    const gw = await start(policy('global', 'route', 150, '1/h'), 'global');
    const results = await burst(400, 40, () => hit(`${gw.url}/v1/x`));
    expect(statusCounts(results)).toEqual({ 200: 150, 429: 250 });
    expect(live.backend!.received).toHaveLength(150);
  });
});

describe('limiter decisions are reported', () => {
  it('through context.observer', async () => {
    const events = limiterEvents();
    const gw = await start(policy('per-key', 'header:x-api-key', 1, '1/h'), 'per-key', { observer: events.observer });
    await hit(`${gw.url}/v1/x`, { 'x-api-key': 'k' });
    await hit(`${gw.url}/v1/x`, { 'x-api-key': 'k' });
    await hit(`${gw.url}/v1/x`);
    expect(events.decisions).toEqual([
      { policy: 'per-key', result: 'allowed' },
      { policy: 'per-key', result: 'limited' },
      { policy: 'per-key', result: 'missing-key' },
    ]);
  });
});
