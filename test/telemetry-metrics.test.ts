import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { ROOT, startGateway } from './helpers/gateway.js';
import { startGatewayFromFile } from './helpers/reload.js';
import { waitUntil } from './helpers/wait.js';
import { dashboardYaml, Scrape, scrape, startHeldBackend } from './helpers/telemetry.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

/**
 * Three upstreams, three kinds of 429:
 *  - llm:  primary answers 429 (retry-after-ms 30000) → failover to the spill-over backend;
 *  - solo: its only backend throttles → the gateway answers 429 itself (pool exhausted);
 *  - once: maxAttempts 1 → the backend's 429 is passed through to the client.
 */
async function scriptedGateway(): Promise<{ throttling: TestBackend; healthy: TestBackend; lonely: TestBackend; strict: TestBackend }> {
  const throttling = await startStaticBackend(429, { 'retry-after-ms': '30000' }, '', 'throttling');
  const healthy = await startBackend(undefined, 'healthy');
  const lonely = await startStaticBackend(429, { 'retry-after': '30' }, '', 'lonely');
  const strict = await startStaticBackend(429, { 'retry-after-ms': '250' }, '', 'strict');
  const spare = await startBackend(undefined, 'spare');
  live.backends = [throttling, healthy, lonely, strict, spare];
  live.gateway = await startGateway(`upstreams:
  llm:
    backends:
      - { url: ${throttling.url}, priority: 1 }
      - { url: ${healthy.url}, priority: 2 }
  solo:
    backends:
      - { url: ${lonely.url} }
  once:
    failover: { maxAttempts: 1 }
    backends:
      - { url: ${strict.url}, priority: 1 }
      - { url: ${spare.url}, priority: 2 }
rateLimits:
  per-key: { key: header:x-api-key, capacity: 1, refill: 1/h }
routes:
  - { name: chat, match: { path: /v1/ }, upstream: llm }
  - { name: batch, match: { path: /batch/ }, upstream: solo }
  - { name: strict, match: { path: /strict/ }, upstream: once }
  - { name: limited, match: { path: /limited/ }, upstream: llm, rateLimit: per-key }
`);
  return { throttling, healthy, lonely, strict };
}

describe('GET /metrics after scripted traffic', () => {
  it('counts requests, attempts, failovers and the three kinds of 429 as separate series', async () => {
    const { throttling, healthy, lonely, strict } = await scriptedGateway();
    const g = live.gateway!;

    // 1. a 429 failover: served by the spill-over backend in the same call
    expect((await fetch(`${g.url}/v1/chat`, { method: 'POST', body: '{}' })).status).toBe(200);
    // 2. while the primary cools, a plain request goes to the spill-over directly
    expect((await fetch(`${g.url}/v1/chat`, { method: 'POST', body: '{}' })).status).toBe(200);
    // 3. pool exhausted twice: once after the backend's 429, once without calling it
    expect((await fetch(`${g.url}/batch/job`)).status).toBe(429);
    expect((await fetch(`${g.url}/batch/job`)).status).toBe(429);
    // 4. a passed-through 429 (one attempt allowed)
    const passed = await fetch(`${g.url}/strict/x`);
    expect(passed.status).toBe(429);
    expect(passed.headers.get('content-type')).toBe('application/json');
    // 5. a request no route matches
    expect((await fetch(`${g.url}/nowhere`)).status).toBe(404);
    // 6. a client-limit 429: the second request of the same key
    expect((await fetch(`${g.url}/limited/a`, { headers: { 'x-api-key': 'k1' } })).status).toBe(200);
    const limited = await fetch(`${g.url}/limited/a`, { headers: { 'x-api-key': 'k1' } });
    expect(limited.status).toBe(429);
    await limited.text();

    expect(throttling.received).toHaveLength(1);
    expect(healthy.received).toHaveLength(3);
    expect(lonely.received).toHaveLength(1);
    expect(strict.received).toHaveLength(1);

    const m = await scrape(g.adminUrl);
    expect(m.all('spillway_requests_total')).toEqual({
      '{method="POST",route="chat",status_class="2xx"}': 2,
      '{method="GET",route="batch",status_class="4xx"}': 2,
      '{method="GET",route="strict",status_class="4xx"}': 1,
      '{method="GET",route="(unmatched)",status_class="4xx"}': 1,
      '{method="GET",route="limited",status_class="2xx"}': 1,
      '{method="GET",route="limited",status_class="4xx"}': 1,
    });
    expect(m.all('spillway_upstream_attempts_total')).toEqual({
      [`{backend="${throttling.url}",outcome="throttled",upstream="llm"}`]: 1,
      [`{backend="${healthy.url}",outcome="ok",upstream="llm"}`]: 3,
      // requests 2 and 6 passed the cooling primary over; the second batch request found its only backend cooling
      [`{backend="${throttling.url}",outcome="skipped_cooling",upstream="llm"}`]: 2,
      [`{backend="${lonely.url}",outcome="throttled",upstream="solo"}`]: 1,
      [`{backend="${lonely.url}",outcome="skipped_cooling",upstream="solo"}`]: 1,
      [`{backend="${strict.url}",outcome="throttled",upstream="once"}`]: 1,
    });
    // three kinds of 429, three series
    expect(m.all('spillway_pool_exhausted_total')).toEqual({ '{route="batch",upstream="solo"}': 2 });
    expect(m.all('spillway_throttle_passed_through_total')).toEqual({ [`{backend="${strict.url}",status="429",upstream="once"}`]: 1 });
    expect(m.all('spillway_client_limited_total')).toEqual({ '{policy="per-key"}': 1 });
    expect(m.all('spillway_limiter_decisions_total')).toEqual({
      '{policy="per-key",result="allowed"}': 1,
      '{policy="per-key",result="limited"}': 1,
    });
    // cooldowns by the header they came from
    expect(m.all('spillway_backend_cooldowns_total')).toEqual({
      [`{backend="${throttling.url}",source="retry-after-ms",upstream="llm"}`]: 1,
      [`{backend="${lonely.url}",source="retry-after",upstream="solo"}`]: 1,
      [`{backend="${strict.url}",source="retry-after-ms",upstream="once"}`]: 1,
    });
    // failovers per request: the chat request that failed over once, the one that did not
    expect(m.value('spillway_request_failovers_bucket', { route: 'chat', le: '0' })).toBe(1);
    expect(m.value('spillway_request_failovers_bucket', { route: 'chat', le: '1' })).toBe(2);
    expect(m.value('spillway_request_failovers_count', { route: 'chat' })).toBe(2);
    expect(m.value('spillway_request_failovers_sum', { route: 'chat' })).toBe(1);
    // latency histograms
    expect(m.value('spillway_request_duration_seconds_count', { route: 'chat', method: 'POST', status_class: '2xx' })).toBe(2);
    expect(m.value('spillway_upstream_attempt_duration_seconds_count', { upstream: 'llm', backend: healthy.url })).toBe(3);
    // backend gauges, read at scrape time
    expect(m.value('spillway_backend_cooling', { upstream: 'llm', backend: throttling.url })).toBe(1);
    expect(m.value('spillway_backend_cooling', { upstream: 'llm', backend: healthy.url })).toBe(0);
    const left = m.value('spillway_backend_cooldown_remaining_seconds', { upstream: 'solo', backend: lonely.url })!;
    expect(left).toBeGreaterThan(20);
    expect(left).toBeLessThanOrEqual(30);
    expect(m.value('spillway_backend_in_flight', { upstream: 'llm', backend: healthy.url })).toBe(0);
    expect(m.value('spillway_limiter_degraded')).toBe(0);
    // default process metrics
    expect(m.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(m.text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');

    // a cooldown ends (strict: 250ms): the gauge follows without any request
    await new Promise((resolve) => setTimeout(resolve, 300));
    const later = await scrape(g.adminUrl);
    expect(later.value('spillway_backend_cooling', { upstream: 'once', backend: strict.url })).toBe(0);
    expect(later.value('spillway_backend_cooldown_remaining_seconds', { upstream: 'once', backend: strict.url })).toBe(0);
    expect(later.value('spillway_backend_cooling', { upstream: 'llm', backend: throttling.url })).toBe(1);
  });

  it('never uses request paths, queries or client values as label values', async () => {
    await scriptedGateway();
    const g = live.gateway!;
    for (let i = 0; i < 20; i++)
      await (await fetch(`${g.url}/v1/item-${i}?user=u${i}`, { headers: { 'x-api-key': `k${i}` } })).arrayBuffer();
    await (await fetch(`${g.url}/random-${Math.random()}`)).arrayBuffer();
    const text = (await scrape(g.adminUrl)).text;
    expect(text).not.toMatch(/item-|user=|random-|u1\b|k1\b/);
    // the 21 requests are still all counted, under the route's name (or "(unmatched)") only:
    // one series per route, method and status class, not one per path
    expect(new Scrape(text).all('spillway_requests_total')).toEqual({
      '{method="GET",route="chat",status_class="2xx"}': 20,
      '{method="GET",route="(unmatched)",status_class="4xx"}': 1,
    });
  });

  it('in-flight gauge counts requests the backend is still answering', async () => {
    const { backend: slow, release } = await startHeldBackend();
    live.backends = [slow];
    live.gateway = await startGateway(
      `upstreams:\n  app:\n    backends: [ { url: ${slow.url} } ]\nroutes:\n  - { name: app, upstream: app }\n`,
    );
    const pending = [fetch(`${live.gateway.url}/a`), fetch(`${live.gateway.url}/b`)];
    await waitUntil(() => slow.received.length === 2, { interval: 5, message: 'both requests at the held backend' });
    expect((await scrape(live.gateway.adminUrl)).value('spillway_backend_in_flight', { upstream: 'app', backend: slow.url })).toBe(2);
    release();
    await Promise.all(pending.map(async (p) => (await p).text()));
    expect((await scrape(live.gateway.adminUrl)).value('spillway_backend_in_flight', { upstream: 'app', backend: slow.url })).toBe(0);
  });

  it('reports every declared decision event as a metric', async () => {
    await scriptedGateway();
    const g = live.gateway!;
    const { observer } = g.gateway.telemetry;
    const upstream = g.gateway.snapshot.upstreams.get('llm')!;
    const [backend] = upstream.backends;
    const route = g.gateway.snapshot.routes[0]!;
    observer.breakerStateChange(upstream, backend!, 'open');
    observer.healthChange(upstream, backend!, false);
    observer.retry(upstream, backend!, 'status-502');
    observer.concurrencyRejected(upstream, backend, 'queue-full');
    observer.limiterDegraded(true, 'redis unreachable');
    observer.configReload('ok', 'gateway.yaml');
    observer.configReload('rejected', 'gateway.yaml:3:5 bad');
    observer.mirrorCompared(route, {
      statusEqual: true,
      bodyEqual: false,
      primaryStatus: 200,
      shadowStatus: 200,
      primaryMs: 1,
      shadowMs: 2,
    });
    observer.mirrorCompared(route, {
      statusEqual: true,
      bodyEqual: undefined,
      primaryStatus: 200,
      shadowStatus: 200,
      primaryMs: 1,
      shadowMs: 2,
    });
    observer.aggregatePart(route, 'profile', 'ok', 12);
    observer.aggregatePart(route, 'orders', 'timeout', 250);
    observer.aggregateResponse(route, true, 200);
    const m = await scrape(g.adminUrl);
    const b = backend!.url;
    expect(m.all('spillway_breaker_transitions_total')).toEqual({ [`{backend="${b}",state="open",upstream="llm"}`]: 1 });
    expect(m.all('spillway_health_changes_total')).toEqual({ [`{backend="${b}",healthy="false",upstream="llm"}`]: 1 });
    expect(m.all('spillway_retries_total')).toEqual({ [`{backend="${b}",reason="status-502",upstream="llm"}`]: 1 });
    expect(m.all('spillway_concurrency_rejected_total')).toEqual({ [`{backend="${b}",reason="queue-full",upstream="llm"}`]: 1 });
    expect(m.value('spillway_limiter_degraded')).toBe(1);
    expect(m.all('spillway_config_reloads_total')).toEqual({ '{result="ok"}': 1, '{result="rejected"}': 1 });
    expect(m.all('spillway_mirror_comparisons_total')).toEqual({
      '{result="body_mismatch",route="chat"}': 1,
      '{result="match",route="chat"}': 1,
    });
    expect(m.all('spillway_aggregate_parts_total')).toEqual({
      '{outcome="ok",part="profile",route="chat"}': 1,
      '{outcome="timeout",part="orders",route="chat"}': 1,
    });
    expect(m.value('spillway_aggregate_part_duration_seconds_sum', { route: 'chat', part: 'orders' })).toBe(0.25);
    expect(m.all('spillway_aggregate_responses_total')).toEqual({ '{partial="true",route="chat"}': 1 });
  });

  it('metrics.enabled: false → no /metrics endpoint', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(
      `metrics: { enabled: false }\nupstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - { upstream: app }\n`,
    );
    expect((await fetch(`${live.gateway.adminUrl}/metrics`)).status).toBe(404);
    expect((await fetch(`${live.gateway.url}/x`)).status).toBe(200);
  });

  it('metrics.process: false → only spillway series', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(
      `metrics: { process: false }\nupstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - { upstream: app }\n`,
    );
    const m = await scrape(live.gateway.adminUrl);
    expect([...m.series.keys()].every((key) => key.startsWith('spillway_'))).toBe(true);
  });
});

describe('metrics from the routing features', () => {
  it('config reloads by result, and mirror agreement', async () => {
    const primary = await startBackend(undefined, 'same');
    const shadow = await startBackend(undefined, 'same');
    live.backends = [primary, shadow];
    const yaml = `upstreams:
  legacy: { backends: [ { url: ${primary.url} } ] }
  shadow: { backends: [ { url: ${shadow.url} } ] }
routes:
  - { name: all, upstream: legacy, mirror: { upstream: shadow, percent: 100 } }
`;
    const fileGateway = await startGatewayFromFile(yaml);
    live.gateway = fileGateway;
    await (await fetch(`${fileGateway.url}/x`)).text();
    await fileGateway.rewrite(`${yaml}\n# touched\n`);
    expect(
      (await fetch(`${fileGateway.adminUrl}/admin/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(200);
    await fileGateway.rewrite('routes: [');
    expect(
      (await fetch(`${fileGateway.adminUrl}/admin/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(422);

    const m = await waitUntil(() => scrape(fileGateway.adminUrl), {
      until: (s) => (s.value('spillway_mirror_comparisons_total', { route: 'all', result: 'match' }) ?? 0) >= 1,
      message: 'a mirror comparison in /metrics',
    });
    expect(m.all('spillway_config_reloads_total')).toEqual({ '{result="ok"}': 1, '{result="rejected"}': 1 });
    expect(m.all('spillway_mirror_comparisons_total')).toEqual({ '{result="match",route="all"}': 1 });
    // the shadow's attempt is counted as an attempt on its upstream, not as the client's failover
    expect(m.value('spillway_upstream_attempts_total', { upstream: 'shadow', backend: shadow.url, outcome: 'ok' })).toBe(1);
    expect(m.value('spillway_request_failovers_sum', { route: 'all' })).toBe(0);
    const events = (await (await fetch(`${fileGateway.adminUrl}/admin/events`)).json()) as { events: Array<Record<string, unknown>> };
    expect(events.events.map((event) => [event.event, event.result])).toEqual([
      ['config.reload', 'ok'],
      ['config.reload', 'rejected'],
    ]);
  });
});

describe('metrics from resilience', () => {
  it('breaker transitions, breaker state gauge, retries and the decision event', async () => {
    const broken = await startStaticBackend(500, {}, '{"error":"boom"}', 'broken');
    const healthy = await startBackend(undefined, 'healthy');
    live.backends = [broken, healthy];
    live.gateway = await startGateway(`upstreams:
  orders:
    balance: round-robin
    breaker: { minRequests: 2, openFor: 30s, halfOpenRequests: 1 }
    backends:
      - { url: ${broken.url} }
      - { url: ${healthy.url} }
routes:
  - { name: orders, upstream: orders }
`);
    for (let i = 0; i < 8; i++) await (await fetch(`${live.gateway.url}/x`)).arrayBuffer();
    const m = await scrape(live.gateway.adminUrl);
    expect(m.all('spillway_breaker_transitions_total')).toEqual({ [`{backend="${broken.url}",state="open",upstream="orders"}`]: 1 });
    expect(m.value('spillway_backend_breaker_state', { upstream: 'orders', backend: broken.url })).toBe(2);
    expect(m.value('spillway_backend_breaker_state', { upstream: 'orders', backend: healthy.url })).toBe(0);
    expect(
      m.value('spillway_upstream_attempts_total', { upstream: 'orders', backend: broken.url, outcome: 'error' }),
    ).toBeGreaterThanOrEqual(2);
    expect(m.value('spillway_backend_healthy', { upstream: 'orders', backend: broken.url })).toBeUndefined();
    expect(m.value('spillway_backend_queue_depth', { upstream: 'orders', backend: broken.url })).toBeUndefined();
    const opened = live.gateway.logs.events('backend.breaker');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ level: 30, msg: 'breaker opened', upstream: 'orders', backend: broken.url, state: 'open' });
    const events = (await (await fetch(`${live.gateway.adminUrl}/admin/events`)).json()) as { events: Array<Record<string, unknown>> };
    expect(events.events.map((event) => event.event)).toContain('backend.breaker');
  });

  it('queue depth and in-flight under a concurrency limit', async () => {
    const { backend: slow, release } = await startHeldBackend();
    live.backends = [slow];
    live.gateway = await startGateway(`upstreams:
  app:
    concurrency: { perBackend: 1, queue: 5, maxWait: 5s }
    backends: [ { url: ${slow.url} } ]
routes:
  - { name: app, upstream: app }
`);
    const pending = [fetch(`${live.gateway.url}/a`), fetch(`${live.gateway.url}/b`), fetch(`${live.gateway.url}/c`)];
    await waitUntil(() => scrape(live.gateway!.adminUrl), {
      until: (s) => s.value('spillway_backend_queue_depth', { upstream: 'app', backend: slow.url }) === 2,
      message: 'queue depth 2 in /metrics',
    });
    const m = await scrape(live.gateway.adminUrl);
    expect(m.value('spillway_backend_queue_depth', { upstream: 'app', backend: slow.url })).toBe(2);
    expect(m.value('spillway_backend_in_flight', { upstream: 'app', backend: slow.url })).toBe(1);
    release();
    await Promise.all(pending.map(async (p) => (await p).text()));
    const after = await scrape(live.gateway.adminUrl);
    expect(after.value('spillway_backend_queue_depth', { upstream: 'app', backend: slow.url })).toBe(0);
  });
});

describe('metrics from fan-out', () => {
  it('counts parts by outcome and partial answers', async () => {
    const users = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"name":"ada"}');
    });
    const orders = await startStaticBackend(500, {}, '{"error":"down"}');
    live.backends = [users, orders];
    live.gateway = await startGateway(dashboardYaml(users.url, orders.url));
    const response = await fetch(`${live.gateway.url}/dash`);
    expect(response.status).toBe(200);
    await response.text();
    const m = await scrape(live.gateway.adminUrl);
    expect(m.all('spillway_aggregate_parts_total')).toEqual({
      '{outcome="ok",part="profile",route="dashboard"}': 1,
      '{outcome="error",part="orders",route="dashboard"}': 1,
    });
    expect(m.all('spillway_aggregate_responses_total')).toEqual({ '{partial="true",route="dashboard"}': 1 });
    expect(m.value('spillway_aggregate_part_duration_seconds_count', { route: 'dashboard', part: 'profile' })).toBe(1);
    expect(m.value('spillway_requests_total', { route: 'dashboard', method: 'GET', status_class: '2xx' })).toBe(1);
  });
});

describe('the documented metrics exist', () => {
  it('every spillway_* name in docs/operations.md and deploy/grafana-dashboard.json is served by /metrics', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(`upstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - { upstream: app }\n`);
    const served = new Set([...(await scrape(live.gateway.adminUrl)).text.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]!));
    const histogramParts = (name: string) => name.replace(/_(bucket|sum|count)$/, '');
    for (const file of ['docs/operations.md', 'deploy/grafana-dashboard.json']) {
      const text = await readFile(join(ROOT, file), 'utf8');
      if (file.endsWith('.json')) expect((JSON.parse(text) as { panels: unknown[] }).panels.length).toBeGreaterThan(10);
      const named = new Set([...text.matchAll(/\bspillway_[a-z_]+[a-z]/g)].map((m) => histogramParts(m[0])));
      const missing = [...named].filter((name) => !served.has(name));
      expect(missing, file).toEqual([]);
    }
  });
});

describe('metrics and events from health checks', () => {
  it('a backend failing its health checks: healthy gauge 0, a health change counted and logged', async () => {
    let failing = false;
    const app = await startBackend((req, res) => {
      if (req.url === '/health' && failing) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const spare = await startBackend();
    live.backends = [app, spare];
    live.gateway = await startGateway(`upstreams:
  app:
    healthCheck: { path: /health, interval: 50ms, timeout: 500ms, unhealthyAfter: 2, healthyAfter: 1 }
    backends:
      - { url: ${app.url} }
      - { url: ${spare.url}, priority: 2 }
routes:
  - { name: app, upstream: app }
`);
    expect((await scrape(live.gateway.adminUrl)).value('spillway_backend_healthy', { upstream: 'app', backend: app.url })).toBe(1);
    failing = true;
    const m = await waitUntil(() => scrape(live.gateway!.adminUrl), {
      until: (s) => s.value('spillway_backend_healthy', { upstream: 'app', backend: app.url }) === 0,
      message: 'the backend unhealthy in /metrics',
    });
    expect(m.value('spillway_backend_healthy', { upstream: 'app', backend: app.url })).toBe(0);
    expect(m.all('spillway_health_changes_total')).toEqual({ [`{backend="${app.url}",healthy="false",upstream="app"}`]: 1 });
    expect(live.gateway.logs.events('backend.health')[0]).toMatchObject({
      level: 30,
      msg: 'backend unhealthy',
      upstream: 'app',
      backend: app.url,
      healthy: false,
    });
  });
});
