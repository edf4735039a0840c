// The cache as a resilience tool: identical cold misses make one backend call (collapsed
// forwarding), stale-while-revalidate answers at once and refreshes behind, and stale-if-error
// answers from the store when the backend is dead or every backend is cooling after 429s.

import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, startBackend } from './helpers/backend.js';
import { cacheSetup, fetchAnswer, type CacheSetup } from './helpers/cache.js';
import { startGateway } from './helpers/gateway.js';
import { sleep, waitUntil } from './helpers/wait.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await closeAll(...open.splice(0));
});

async function setup(...args: Parameters<typeof cacheSetup>): Promise<CacheSetup> {
  const setup = await cacheSetup(...args);
  open.push(setup.gw, setup.backend);
  return setup;
}

async function metric(s: CacheSetup, result: string): Promise<number> {
  const text = await (await fetch(`${s.gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`spillway_cache_requests_total{route="cached",result="${result}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('collapsed forwarding', () => {
  it('100 concurrent identical GETs on a cold key: 1 backend call, 100 identical answers', async () => {
    let n = 0;
    const s = await setup(async (_req, res) => {
      n++;
      await sleep(300);
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/json' });
      res.end(JSON.stringify({ call: n, payload: 'x'.repeat(2000) }));
    });
    const answers = await Promise.all(Array.from({ length: 100 }, () => s.get('/cold')));
    expect(s.calls('/cold')).toBe(1);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // One miss led; the others waited for it (collapsed) or, arriving after it was stored, hit.
    const collapsed = answers.filter((a) => a.cacheStatus.includes('collapsed')).length;
    const hits = answers.filter((a) => a.cacheStatus.includes('hit')).length;
    expect(answers.filter((a) => a.cacheStatus.includes('fwd=uri-miss')).length).toBe(1);
    expect(hits).toBe(99);
    expect(collapsed).toBeGreaterThan(0);
    expect(await metric(s, 'collapsed')).toBe(collapsed);
    expect(await metric(s, 'miss')).toBe(1);
  });

  it('waiters go on their own once lockTimeout passes', async () => {
    const s = await setup(async (_req, res) => {
      await sleep(600);
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('slow');
    }, '{ lockTimeout: 100ms }');
    const answers = await Promise.all(Array.from({ length: 3 }, () => s.get('/slow')));
    expect(answers.map((a) => a.body)).toEqual(['slow', 'slow', 'slow']);
    expect(s.calls('/slow')).toBe(3);
  });

  it('an answer that cannot be stored releases the waiters to the backend', async () => {
    const s = await setup(async (_req, res) => {
      await sleep(200);
      res.writeHead(200, { 'cache-control': 'private' });
      res.end('mine');
    });
    const answers = await Promise.all(Array.from({ length: 5 }, () => s.get('/private')));
    expect(answers.every((a) => a.body === 'mine')).toBe(true);
    expect(s.calls('/private')).toBe(5);
  });
});

describe('stale answers', () => {
  it('stale-while-revalidate: the stale answer at once, refreshed in the background', async () => {
    let n = 0;
    const s = await setup((_req, res) => {
      n++;
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=30' });
      res.end(`v${n}`);
    });
    await s.get('/swr');
    await sleep(1100);
    const stale = await s.get('/swr');
    expect(stale.body).toBe('v1');
    expect(stale.cacheStatus).toMatch(/^spillway; hit; ttl=-\d+; detail=stale-while-revalidate$/);
    expect(stale.age).toBeGreaterThanOrEqual(1);
    await waitUntil(() => s.calls('/swr') === 2, { message: 'the background refresh' });
    await waitUntil(async () => (await s.get('/swr')).body === 'v2', { message: 'the refreshed entry' });
    expect(await metric(s, 'stale')).toBe(1);
  });

  it('backend killed: answers within staleIfError are served stale (200), others get the usual problem', async () => {
    const s = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=1', 'content-type': 'text/plain' });
      res.end(`fresh ${req.url}`);
    }, '{ staleIfError: 5m }');
    await s.get('/item/1');
    await sleep(1100);
    await s.backend.close();
    const stale = await s.get('/item/1');
    expect(stale.status).toBe(200);
    expect(stale.body).toBe('fresh /item/1');
    expect(stale.cacheStatus).toMatch(/fwd=stale; fwd-status=502; ttl=-\d+; detail="stale-if-error: upstream-\w+/);
    expect(stale.age).toBeGreaterThanOrEqual(1);
    const other = await s.get('/item/2');
    expect(other.status).toBe(502);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect(other.cacheStatus).toContain('fwd=uri-miss; fwd-status=502');
  });

  it('stale-if-error from the answer itself, without a route setting', async () => {
    const s = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-if-error=60' });
      res.end('answer');
    });
    await s.get('/a');
    await sleep(1100);
    await s.backend.close();
    const stale = await s.get('/a');
    expect(stale.status).toBe(200);
    expect(stale.cacheStatus).toContain('stale-if-error');
  });

  it('must-revalidate forbids stale-if-error: the client gets the problem', async () => {
    const s = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=1, must-revalidate', etag: '"m"' });
      res.end('answer');
    }, '{ staleIfError: 5m }');
    await s.get('/a');
    await sleep(1100);
    await s.backend.close();
    expect((await s.get('/a')).status).toBe(502);
  });

  it('a backend 5xx answer is replaced by the stale entry', async () => {
    let fail = false;
    const s = await setup((_req, res: ServerResponse) => {
      if (fail) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('boom');
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=1' });
      res.end('good');
    }, '{ staleIfError: 5m }');
    await s.get('/a');
    await sleep(1100);
    fail = true;
    const answer = await s.get('/a');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('good');
    expect(answer.cacheStatus).toContain('fwd-status=500');
  });

  it('every backend cooling after 429s: cached answers within staleIfError are served, others get 429', async () => {
    let throttle = false;
    const s = await setup((req, res) => {
      if (throttle) {
        res.writeHead(429, { 'retry-after': '30' });
        res.end();
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=1' });
      res.end(`cached ${req.url}`);
    }, '{ staleIfError: 5m }');
    await s.get('/list');
    await sleep(1100);
    throttle = true;
    // The backend answers 429: it cools down, no backend is left, the stale answer stands in.
    const first = await s.get('/list');
    expect(first.status).toBe(200);
    expect(first.body).toBe('cached /list');
    expect(first.cacheStatus).toContain('detail="stale-if-error: all-backends-throttled"');
    // Now the pool is blocked before any call: the short-cut serves the stale answer too.
    const calls = s.calls();
    const second = await s.get('/list');
    expect(second.status).toBe(200);
    expect(second.cacheStatus).toMatch(/fwd=stale; fwd-status=429/);
    expect(s.calls()).toBe(calls);
    const uncached = await s.get('/never-seen');
    expect(uncached.status).toBe(429);
    expect(uncached.headers.get('retry-after')).not.toBeNull();
    expect(JSON.parse(uncached.body).type).toBe('urn:spillway:problem:all-backends-throttled');
  });

  it('breakers open: the stale answer instead of the 503 problem', async () => {
    let failing = false;
    const s = await setup(
      (req, res) => {
        if (failing) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('down');
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=1' });
        res.end(`cached ${req.url}`);
      },
      '{ staleIfError: 5m }',
      '',
      ', breaker: { failureRate: 50%, minRequests: 2, openFor: 30s }',
    );
    await s.get('/a');
    await sleep(1100);
    failing = true;
    const replaced = await s.get('/a');
    expect(replaced.status).toBe(200);
    expect(replaced.cacheStatus).toContain('fwd-status=503');
    expect((await s.get('/b')).status).toBe(503);
    const open = await s.get('/a');
    expect(open.status).toBe(200);
    expect(open.body).toBe('cached /a');
    expect(open.cacheStatus).toContain('detail="stale-if-error: all-backends-unavailable"');
    const uncached = await s.get('/c');
    expect(uncached.status).toBe(503);
    expect(JSON.parse(uncached.body).type).toBe('urn:spillway:problem:all-backends-unavailable');
  });
});

describe('admin purge', () => {
  it('DELETE /admin/cache?prefix= drops matching entries only', async () => {
    const s = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`at ${req.url}`);
    });
    await s.get('/users/1');
    await s.get('/users/2');
    await s.get('/orders/1');
    const purge = await fetch(`${s.gw.adminUrl}/admin/cache?prefix=/users/`, { method: 'DELETE' });
    expect(purge.status).toBe(200);
    expect(await purge.json()).toEqual({ prefix: '/users/', purged: { memory: 2, redis: null } });
    expect((await s.get('/users/1')).cacheStatus).toContain('uri-miss');
    expect((await s.get('/orders/1')).cacheStatus).toContain('hit');
    const routes = (await (await fetch(`${s.gw.adminUrl}/admin/routes`)).json()) as { routes: Array<{ cache: Record<string, unknown> }> };
    expect(routes.routes[0]!.cache).toMatchObject({ store: 'memory', entries: 2, maxSize: 256 * 1024 * 1024, maxBody: 1024 * 1024 });
    expect(routes.routes[0]!.cache.bytes).toBeGreaterThan(0);
    const bad = await fetch(`${s.gw.adminUrl}/admin/cache`, { method: 'DELETE' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
  });
});

describe('reload', () => {
  it('memory entries outlive a config reload', async () => {
    const s = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('kept');
    });
    await s.get('/r');
    const { parseConfigText } = await import('../src/config/load.js');
    const { config } = parseConfigText(
      `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  api: { backends: [ { url: ${s.backend.url} } ] }
routes:
  - name: cached
    upstream: api
    cache: { maxSize: 10mb }
`,
      'reloaded.yaml',
      {},
    );
    s.gw.gateway.apply(config, 'reloaded.yaml');
    expect((await s.get('/r')).cacheStatus).toContain('hit');
    expect(s.calls()).toBe(1);
  });
});

describe('fallback', () => {
  it("the route's fallback answer is passed on, never stored as the upstream's", async () => {
    let throttle = true;
    const backend = await startBackend((_req, res) => {
      if (throttle) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('real answer');
    });
    const gw = await startGateway(`
upstreams:
  api: { backends: [ { url: ${backend.url} } ] }
routes:
  - name: cached
    upstream: api
    cache: { defaultTtl: 1m }
    fallback: { status: 200, body: maintenance }
`);
    open.push(gw, backend);
    const during = await fetchAnswer(`${gw.url}/page`);
    expect(during.body).toBe('maintenance');
    expect(during.cacheStatus).not.toContain('stored');
    // The pool-blocked short-cut takes the fallback too.
    expect((await fetchAnswer(`${gw.url}/page`)).body).toBe('maintenance');
    throttle = false;
    await sleep(1100);
    const after = await fetchAnswer(`${gw.url}/page`);
    expect(after.body).toBe('real answer');
    expect(after.cacheStatus).toContain('stored');
  });
});
