import { describe, expect, it } from 'vitest';
import { startBackend, startStaticBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { scrape } from './helpers/telemetry.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function single(url: string, top = ''): string {
  return `${top}upstreams:\n  app:\n    backends: [ { url: ${url} } ]\nroutes:\n  - { name: app, upstream: app }\n`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('request log and request id', () => {
  it('writes one JSON line per request (log.requests.sample: 1); x-request-id is generated, forwarded and returned', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, 'log: { requests: { sample: 1 } }\n'));
    const response = await fetch(`${live.gateway.url}/orders/7?page=2`, { method: 'POST', body: 'x' });
    await response.text();
    const id = response.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    expect(app.received[0]!.headers['x-request-id']).toBe(id);
    await sleep(20);
    const lines = live.gateway.logs.events('request');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request',
      requestId: id,
      method: 'POST',
      target: '/orders/7?page=2',
      route: 'app',
      upstream: 'app',
      backend: app.url,
      attempts: 1,
      status: 200,
    });
    expect(typeof lines[0]!.durationMs).toBe('number');
    // every generated id is new
    const ids = new Set<string>([id]);
    for (let i = 0; i < 20; i++) {
      const next = await fetch(`${live.gateway.url}/orders/${i}`);
      await next.text();
      ids.add(next.headers.get('x-request-id')!);
    }
    expect(ids.size).toBe(21);
  });

  it("keeps the client's x-request-id (replaces an unusable one)", async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url));
    const kept = await fetch(`${live.gateway.url}/a`, { headers: { 'x-request-id': 'client-abc-123' } });
    expect(kept.headers.get('x-request-id')).toBe('client-abc-123');
    expect(app.received[0]!.headers['x-request-id']).toBe('client-abc-123');
    const tooLong = await fetch(`${live.gateway.url}/b`, { headers: { 'x-request-id': 'x'.repeat(500) } });
    expect(tooLong.headers.get('x-request-id')).toMatch(UUID);
    expect(app.received[1]!.headers['x-request-id']).toBe(tooLong.headers.get('x-request-id'));
    // request lines are off by default (the id is still kept/generated: metrics are on)
    await sleep(20);
    expect(live.gateway.logs.events('request')).toHaveLength(0);
  });

  it('gateway-made answers carry the request id too (404, pool exhausted)', async () => {
    const app = await startStaticBackend(429, { 'retry-after': '5' });
    live.backends = [app];
    live.gateway = await startGateway(
      single(app.url, 'log: { requests: { sample: 1 } }\n').replace('name: app, upstream', 'name: app, match: { path: /api/ }, upstream'),
    );
    const notFound = await fetch(`${live.gateway.url}/nope`);
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('x-request-id')).toMatch(UUID);
    await (await fetch(`${live.gateway.url}/api/x`)).text();
    const exhausted = await fetch(`${live.gateway.url}/api/x`, { headers: { 'x-request-id': 'r-2' } });
    expect(exhausted.status).toBe(429);
    expect(exhausted.headers.get('x-request-id')).toBe('r-2');
    await sleep(20);
    expect(live.gateway.logs.events('request').map((line) => [line.route ?? null, line.status])).toEqual([
      [null, 404],
      ['app', 429],
      ['app', 429],
    ]);
  });

  it("the gateway's id wins over a backend's own x-request-id, once; static answers carry it too", async () => {
    const app = await startStaticBackend(200, { 'x-request-id': 'from-backend', 'content-type': 'text/plain' }, 'hi');
    live.backends = [app];
    live.gateway = await startGateway(
      `upstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - { match: { path: /gone }, respond: { status: 410, body: gone } }\n  - { name: app, upstream: app }\n`,
    );
    const proxied = await fetch(`${live.gateway.url}/a`, { headers: { 'x-request-id': 'client-1' } });
    expect(await proxied.text()).toBe('hi');
    expect(proxied.headers.get('x-request-id')).toBe('client-1');
    expect(proxied.headers.get('content-type')).toBe('text/plain');
    const generated = await fetch(`${live.gateway.url}/b`);
    await generated.text();
    expect(generated.headers.get('x-request-id')).toMatch(UUID);
    const gone = await fetch(`${live.gateway.url}/gone`);
    expect(gone.status).toBe(410);
    expect(await gone.text()).toBe('gone');
    expect(gone.headers.get('x-request-id')).toMatch(UUID);
  });

  it('log.requests.sample: 0 writes no request lines; 0.5 writes about half; idHeader renames the header', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, 'log: { requests: { sample: 0, idHeader: X-Correlation-Id } }\n'));
    const response = await fetch(`${live.gateway.url}/a`);
    expect(response.headers.get('x-correlation-id')).toMatch(UUID);
    expect(response.headers.get('x-request-id')).toBeNull();
    await sleep(20);
    expect(live.gateway.logs.events('request')).toHaveLength(0);
    await live.gateway.close();

    live.gateway = await startGateway(single(app.url, 'log: { requests: { sample: 0.5 } }\n'));
    for (let i = 0; i < 200; i++) await (await fetch(`${live.gateway.url}/s`)).arrayBuffer();
    await sleep(20);
    const logged = live.gateway.logs.events('request').length;
    expect(logged).toBeGreaterThan(60);
    expect(logged).toBeLessThan(140);
  });
});

describe('decision events: one info line each, and GET /admin/events', () => {
  it('backend cooling down (until, header, value) and recovered', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '200', 'retry-after': '1' });
    const healthy = await startBackend();
    live.backends = [throttling, healthy];
    live.gateway = await startGateway(
      `upstreams:\n  llm:\n    backends:\n      - { url: ${throttling.url} }\n      - { url: ${healthy.url}, priority: 2 }\nroutes:\n  - { upstream: llm }\n`,
    );
    const before = Date.now();
    expect((await fetch(`${live.gateway.url}/x`)).status).toBe(200);
    const [cooling] = live.gateway.logs.events('backend.cooldown');
    expect(cooling).toMatchObject({
      level: 30,
      msg: 'backend cooling down',
      upstream: 'llm',
      backend: throttling.url,
      source: 'retry-after-ms',
      value: '200',
      delayMs: 200,
    });
    const until = Date.parse(String(cooling!.until));
    expect(until).toBeGreaterThanOrEqual(before + 200);
    expect(until).toBeLessThan(Date.now() + 250);

    await sleep(300);
    const [recovered] = live.gateway.logs.events('backend.recovered');
    expect(recovered).toMatchObject({ level: 30, msg: 'backend ready again after its cooldown', upstream: 'llm', backend: throttling.url });

    const events = (await (await fetch(`${live.gateway.adminUrl}/admin/events`)).json()) as {
      capacity: number;
      events: Array<Record<string, unknown>>;
    };
    expect(events.capacity).toBe(200);
    expect(events.events.map((event) => event.event)).toEqual(['backend.cooldown', 'backend.recovered']);
    expect(events.events[0]).toMatchObject({ source: 'retry-after-ms', value: '200', backend: throttling.url });
    expect(typeof events.events[0]!.time).toBe('string');
  });

  it('breaker, health, config reload, limiter degraded/recovered: a line each, newest kept in a bounded buffer', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, 'log: { events: 4 }\n'));
    const { observer } = live.gateway.gateway.telemetry;
    const upstream = live.gateway.gateway.snapshot.upstreams.get('app')!;
    const backend = upstream.backends[0]!;
    observer.breakerStateChange(upstream, backend, 'open');
    observer.breakerStateChange(upstream, backend, 'closed');
    observer.healthChange(upstream, backend, false);
    observer.configReload('ok', 'gateway.yaml (2 upstreams, 3 routes)');
    observer.configReload('rejected', 'gateway.yaml:4:7 upstreams.app.backends: required');
    observer.limiterDegraded(true, 'redis: ECONNREFUSED');
    observer.limiterDegraded(false, 'redis reachable again');

    const lines = live.gateway.logs.lines.filter((line) => typeof line.event === 'string' && line.event !== 'request');
    // config reloads are logged by the reloader itself (with trigger and errors; see reload tests)
    expect(lines.map((line) => [line.event, line.msg, line.level])).toEqual([
      ['backend.breaker', 'breaker opened', 30],
      ['backend.breaker', 'breaker closed', 30],
      ['backend.health', 'backend unhealthy', 30],
      ['limiter.degraded', 'rate limiter degraded', 30],
      ['limiter.recovered', 'rate limiter recovered', 30],
    ]);
    expect(lines[0]).toMatchObject({ upstream: 'app', backend: app.url, state: 'open' });
    expect(lines[3]).toMatchObject({ degraded: true, reason: 'redis: ECONNREFUSED' });

    const all = (await (await fetch(`${live.gateway.adminUrl}/admin/events`)).json()) as { events: Array<Record<string, unknown>> };
    expect(all.events.map((event) => event.msg)).toEqual([
      'config reloaded',
      'config rejected',
      'rate limiter degraded',
      'rate limiter recovered',
    ]);
    expect(all.events[1]).toMatchObject({
      event: 'config.reload',
      result: 'rejected',
      detail: 'gateway.yaml:4:7 upstreams.app.backends: required',
    });
    const newest = (await (await fetch(`${live.gateway.adminUrl}/admin/events?limit=1`)).json()) as {
      events: Array<Record<string, unknown>>;
    };
    expect(newest.events.map((event) => event.event)).toEqual(['limiter.recovered']);
  });
});

describe('no secrets in logs', () => {
  it('redacts authorization, cookies and API keys wherever a log line carries them', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, 'log: { redact: [X-Tenant-Secret] }\n'));
    live.gateway.gateway.logger.info(
      {
        headers: {
          authorization: 'Bearer sk-live-123',
          cookie: 'session=abc',
          'x-api-key': 'key-456',
          'api-key': 'az-789',
          'x-tenant-secret': 'tenant-000',
          accept: 'json',
        },
      },
      'headers seen',
    );
    live.gateway.gateway.logger.info({ req: { headers: { authorization: 'Basic dXNlcjpwYXNz', 'set-cookie': 'a=b' } } }, 'nested');
    const text = JSON.stringify(live.gateway.logs.lines);
    for (const secret of ['sk-live-123', 'session=abc', 'key-456', 'az-789', 'tenant-000', 'dXNlcjpwYXNz', 'a=b'])
      expect(text).not.toContain(secret);
    expect(live.gateway.logs.lines[0]).toMatchObject({
      headers: { authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', accept: 'json' },
    });
  });

  it('credentials from the config (URL passwords) and in query strings never reach a log line or a metric label', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '5000' });
    const app = await startBackend();
    live.backends = [throttling, app];
    const secretUrl = throttling.url.replace('http://', 'http://svc:Sup3rS3cretPass@');
    live.gateway = await startGateway(
      `log: { requests: { sample: 1 } }\nupstreams:\n  llm:\n    backends:\n      - { url: ${secretUrl} }\n      - { url: ${app.url}, priority: 2 }\nroutes:\n  - { upstream: llm }\n`,
    );
    await (await fetch(`${live.gateway.url}/v1/chat?api-key=QUERYSECRET&model=gpt`)).text();
    live.gateway.gateway.logger.warn({ detail: `could not reach ${secretUrl}` }, 'error text with a secret');
    await sleep(20);
    const text = JSON.stringify(live.gateway.logs.lines);
    expect(text).not.toContain('Sup3rS3cretPass');
    expect(text).not.toContain('QUERYSECRET');
    expect(live.gateway.logs.events('request')[0]).toMatchObject({ target: '/v1/chat?api-key=[redacted]&model=gpt' });
    expect(live.gateway.logs.events('backend.cooldown')[0]).toMatchObject({ backend: throttling.url });
    expect(text).toContain('[redacted]');
    expect((await scrape(live.gateway.adminUrl)).text).not.toContain('Sup3rS3cretPass');
  });
});
