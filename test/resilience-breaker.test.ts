import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { startGateway } from './helpers/gateway.js';
import { ok, ordersConfig, recordingObserver, served, sleep, startSwitchable, status } from './helpers/resilience.js';
import { waitUntil } from './helpers/wait.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

/** Breaker state of each backend of upstream "orders", in config order. */
function breakerStates(): Array<string | undefined> {
  return live.gateway!.gateway.snapshot.upstreams.get('orders')!.backends.map((backend) => backend.state.breaker?.state);
}

async function get(url: string): Promise<Response> {
  const res = await fetch(url);
  await res.clone().arrayBuffer();
  return res;
}

describe('circuit breaker per backend', () => {
  it("a backend answering 500s trips its own breaker, not its neighbour's, and recovers through half-open", async () => {
    const broken = await startSwitchable('broken', status(500));
    const healthy = await startSwitchable('healthy');
    live.backends = [broken, healthy];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig(
        [broken.url, healthy.url],
        '    breaker: { failureRate: 50%, minRequests: 4, window: 5s, openFor: 1500ms, halfOpenRequests: 2 }',
      ),
      { observer: recorder.observer },
    );

    for (let i = 0; i < 10; i++) await get(`${live.gateway.url}/orders`);
    await waitUntil(() => recorder.of('breaker', broken.url).length > 0, { message: "the broken backend's breaker to change state" });
    // openFor (1.5 s) runs from the trip, which happened before this point: the open phase below
    // (10 quick requests, ~50 ms on a quiet machine) fits inside it with a wide margin
    const trippedBy = Date.now();
    expect(recorder.of('breaker', broken.url)).toEqual(['open']);
    expect(recorder.of('breaker', healthy.url)).toEqual([]);
    const brokenCalls = served(broken);
    expect(brokenCalls).toBeLessThanOrEqual(5);

    // open: every request goes to the neighbour, the broken backend gets nothing
    for (let i = 0; i < 10; i++) expect((await get(`${live.gateway.url}/orders`)).status).toBe(200);
    expect(served(broken)).toBe(brokenCalls);

    const view = (await (await fetch(`${live.gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { orders: { backends: Array<{ state: string; breaker: { state: string } }> } };
    };
    expect(view.upstreams.orders.backends.map((b) => b.state)).toEqual(['open', 'ready']);

    // fixed; after openFor two trial requests succeed and the breaker closes
    broken.behaviour = ok('broken');
    await sleep(trippedBy + 1550 - Date.now());
    for (let i = 0; i < 8; i++) expect((await get(`${live.gateway.url}/orders`)).status).toBe(200);
    expect(recorder.of('breaker', broken.url)).toEqual(['open', 'half-open', 'closed']);
    expect(served(broken)).toBeGreaterThanOrEqual(brokenCalls + 3);
  });

  it('an open breaker survives a config reload that keeps its settings', async () => {
    const broken = await startSwitchable('broken', status(500));
    const healthy = await startSwitchable('healthy');
    live.backends = [broken, healthy];
    const yaml = ordersConfig([broken.url, healthy.url], '    breaker: { minRequests: 2, openFor: 30s }');
    live.gateway = await startGateway(yaml);
    for (let i = 0; i < 6; i++) await get(`${live.gateway.url}/x`);
    await waitUntil(() => breakerStates()[0] === 'open', { message: 'the breaker to open' });
    const before = live.gateway.gateway.snapshot.upstreams.get('orders')!.backends[0]!.state.breaker!;
    expect(before.state).toBe('open');
    const { config: next } = parseConfigText(
      `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n${yaml}`,
      'test.yaml',
      {},
    );
    live.gateway.gateway.apply(next, 'test.yaml');
    expect(live.gateway.gateway.snapshot.upstreams.get('orders')!.backends[0]!.state.breaker).toBe(before);
    const calls = served(broken);
    for (let i = 0; i < 4; i++) expect((await get(`${live.gateway.url}/x`)).status).toBe(200);
    expect(served(broken)).toBe(calls);
  });

  it('a failing half-open trial opens the breaker again', async () => {
    const broken = await startSwitchable('broken', status(503));
    const healthy = await startSwitchable('healthy');
    live.backends = [broken, healthy];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig([broken.url, healthy.url], '    breaker: { minRequests: 2, openFor: 1s, halfOpenRequests: 1 }'),
      { observer: recorder.observer },
    );
    for (let i = 0; i < 6; i++) await get(`${live.gateway.url}/x`);
    await waitUntil(() => recorder.of('breaker', broken.url).includes('open'), { message: 'the breaker to open' });
    // after openFor one trial goes to the broken backend and fails; the 4 requests (~20 ms on a
    // quiet machine) all fall inside the second 1 s open period, so no second trial is made
    await sleep(1050);
    for (let i = 0; i < 4; i++) await get(`${live.gateway.url}/x`);
    expect(recorder.of('breaker', broken.url)).toEqual(['open', 'half-open', 'open']);
  });

  it('429 throttling and other 4xx never trip the breaker', async () => {
    const throttling = await startSwitchable('throttling', status(429, { 'retry-after-ms': '1' }));
    const notFound = await startSwitchable('not-found', status(404));
    live.backends = [throttling, notFound];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig([throttling.url, notFound.url], '    breaker: { failureRate: 10%, minRequests: 2, openFor: 10s }'),
      { observer: recorder.observer },
    );
    for (let i = 0; i < 30; i++) {
      await get(`${live.gateway.url}/x`);
      await sleep(2);
    }
    expect(served(throttling)).toBeGreaterThan(5);
    expect(served(notFound)).toBeGreaterThan(5);
    expect(recorder.of('breaker')).toEqual([]);
  });

  it('a blip under the default settings does not trip a healthy backend', async () => {
    const flaky = await startSwitchable('flaky');
    live.backends = [flaky];
    const recorder = recordingObserver();
    live.gateway = await startGateway(ordersConfig([flaky.url], '    breaker: {}'), { observer: recorder.observer });
    // 5 failures in a row, then normal traffic: under minRequests (20) nothing is decided
    flaky.behaviour = status(502);
    for (let i = 0; i < 5; i++) await get(`${live.gateway.url}/x`);
    flaky.behaviour = ok('flaky');
    for (let i = 0; i < 30; i++) expect((await get(`${live.gateway.url}/x`)).status).toBe(200);
    expect(recorder.of('breaker')).toEqual([]);
  });

  it('connection errors and timeouts count as failures', async () => {
    const slow = await startSwitchable('slow', (_req, res) => void setTimeout(() => res.end('late'), 3000));
    live.backends = [slow];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig([slow.url], '    timeouts: { headers: 50ms }\n    breaker: { minRequests: 2, openFor: 5s }'),
      { observer: recorder.observer },
    );
    expect((await get(`${live.gateway.url}/x`)).status).toBe(504);
    expect((await get(`${live.gateway.url}/x`)).status).toBe(504);
    await waitUntil(() => recorder.of('breaker', slow.url).length > 0, { message: "the slow backend's breaker to change state" });
    expect(recorder.of('breaker', slow.url)).toEqual(['open']);
  });
});

describe('nothing can serve', () => {
  it('every breaker open → 503 problem+json with Retry-After until the earliest half-open, no backend called', async () => {
    const a = await startSwitchable('a', status(500));
    const b = await startSwitchable('b', status(502));
    live.backends = [a, b];
    live.gateway = await startGateway(ordersConfig([a.url, b.url], '    breaker: { minRequests: 2, openFor: 5s }'));
    for (let i = 0; i < 4; i++) await get(`${live.gateway.url}/x`);
    await waitUntil(() => breakerStates().every((state) => state === 'open'), { message: 'both breakers open' });
    const calls = served(a) + served(b);
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(4);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(5);
    expect(await res.json()).toMatchObject({ type: 'urn:spillway:problem:all-backends-unavailable', status: 503, upstream: 'orders' });
    expect(served(a) + served(b)).toBe(calls);
  });

  it('the route fallback answers instead: a static response', async () => {
    const a = await startSwitchable('a', status(500));
    live.backends = [a];
    live.gateway = await startGateway(
      ordersConfig(
        [a.url],
        '    breaker: { minRequests: 1, openFor: 5s }',
        '    fallback: { status: 200, headers: { content-type: application/json }, body: \'{"cached":true}\' }',
      ),
    );
    await get(`${live.gateway.url}/x`);
    await waitUntil(() => breakerStates()[0] === 'open', { message: 'the breaker to open' });
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ cached: true });
  });

  it('the route fallback answers instead: another upstream', async () => {
    const a = await startSwitchable('a', status(500));
    const spare = await startSwitchable('spare');
    live.backends = [a, spare];
    live.gateway = await startGateway(`upstreams:
  orders:
    backends: [ { url: ${a.url} } ]
    breaker: { minRequests: 1, openFor: 5s }
  spare:
    backends: [ { url: ${spare.url} } ]
routes:
  - match: { path: / }
    upstream: orders
    fallback: { upstream: spare }
`);
    await get(`${live.gateway.url}/x`);
    await waitUntil(() => breakerStates()[0] === 'open', { message: 'the breaker to open' });
    const res = await fetch(`${live.gateway.url}/x`, { method: 'POST', body: 'payload' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ backend: 'spare' });
    expect(spare.received[0]!.body).toBe('payload');
  });
});

describe('active health checks', () => {
  it('an unhealthy backend is skipped and comes back after healthyAfter passing probes', async () => {
    const a = await startSwitchable('a');
    const b = await startSwitchable('b');
    live.backends = [a, b];
    a.health = status(503);
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig(
        [a.url, b.url],
        '    healthCheck: { path: /health, interval: 50ms, timeout: 200ms, unhealthyAfter: 2, healthyAfter: 2 }',
      ),
      { observer: recorder.observer },
    );
    await waitUntil(() => recorder.of('health', a.url).includes('unhealthy'), { timeout: 3000, message: 'a unhealthy' });
    const before = served(a);
    for (let i = 0; i < 10; i++) expect((await get(`${live.gateway.url}/x`)).status).toBe(200);
    expect(served(a)).toBe(before);
    expect(served(b)).toBeGreaterThanOrEqual(10);
    const view = (await (await fetch(`${live.gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { orders: { backends: Array<{ state: string; health: { healthy: boolean } }> } };
    };
    expect(view.upstreams.orders.backends[0]).toMatchObject({ state: 'unhealthy', health: { healthy: false } });

    a.health = ok('a');
    await waitUntil(() => recorder.of('health', a.url).includes('healthy'), { timeout: 3000, message: 'a healthy' });
    for (let i = 0; i < 10; i++) await get(`${live.gateway.url}/x`);
    expect(served(a)).toBeGreaterThan(before);
    expect(recorder.of('health', b.url)).toEqual([]);
  });

  it("probes carry the backend's own headers (credentials)", async () => {
    const a = await startSwitchable('a');
    live.backends = [a];
    a.health = (req, res) => {
      res.writeHead(req.headers['api-key'] === 'k-a' ? 200 : 401);
      res.end();
    };
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      `upstreams:
  orders:
    backends: [ { url: ${a.url}, headers: { api-key: k-a } } ]
    healthCheck: { interval: 30ms, unhealthyAfter: 1 }
routes:
  - upstream: orders
`,
      { observer: recorder.observer },
    );
    await waitUntil(() => a.received.filter((r) => r.url === '/health').length >= 3, { timeout: 3000, message: 'probes' });
    expect(recorder.of('health')).toEqual([]);
    expect(a.received.find((r) => r.url === '/health')!.headers['user-agent']).toBe('spillway-health-check');
  });

  it('a probe that times out counts as a failure', async () => {
    const a = await startSwitchable('a');
    live.backends = [a];
    a.health = (_req, res) => void setTimeout(() => res.end('late'), 300);
    const recorder = recordingObserver();
    live.gateway = await startGateway(ordersConfig([a.url], '    healthCheck: { interval: 50ms, timeout: 30ms, unhealthyAfter: 1 }'), {
      observer: recorder.observer,
    });
    await waitUntil(() => recorder.of('health', a.url).includes('unhealthy'), { timeout: 3000, message: 'a unhealthy' });
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ type: 'urn:spillway:problem:all-backends-unavailable' });
  });

  it('passing probes close an open breaker early, without spending user requests in half-open', async () => {
    const a = await startSwitchable('a', status(500));
    const b = await startSwitchable('b');
    live.backends = [a, b];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig([a.url, b.url], '    breaker: { minRequests: 2, openFor: 30s }\n    healthCheck: { interval: 50ms, healthyAfter: 2 }'),
      { observer: recorder.observer },
    );
    for (let i = 0; i < 6; i++) await get(`${live.gateway.url}/x`);
    await waitUntil(() => recorder.of('breaker', a.url).includes('open'), { timeout: 1000, message: 'open' });
    a.behaviour = ok('a');
    await waitUntil(() => recorder.of('breaker', a.url).includes('closed'), { timeout: 2000, message: 'closed by probes' });
    expect(recorder.of('breaker', a.url)).toEqual(['open', 'closed']);
  });
});
