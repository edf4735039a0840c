import { describe, expect, it } from 'vitest';
import { withDefaults } from '../src/snapshot/observer.js';
import { startJsonBackend, type CountingBackend } from './helpers/aggregate.js';
import { startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { waitUntil } from './helpers/wait.js';

const live = perTest();

interface Problem {
  type: string;
  status: number;
  detail?: string;
  part?: string;
  [key: string]: unknown;
}

async function services(replies: Record<string, Parameters<typeof startJsonBackend>[0]>): Promise<Record<string, CountingBackend>> {
  const out: Record<string, CountingBackend> = {};
  for (const [name, reply] of Object.entries(replies)) {
    out[name] = await startJsonBackend(reply, name);
    live.backends.push(out[name]);
  }
  return out;
}

function upstreamsYaml(list: Record<string, TestBackend | TestBackend[]>): string {
  return `upstreams:\n${Object.entries(list)
    .map(([name, b]) => {
      const all = Array.isArray(b) ? b : [b];
      return `  ${name}:\n    backends:\n${all.map((x, i) => `      - { url: ${x.url}, priority: ${i + 1} }`).join('\n')}`;
    })
    .join('\n')}\n`;
}

/** Those upstreams and one aggregate route on /dash; `aggregate` is the YAML below its `aggregate:` key (starting with a newline). */
function dashRoute(list: Record<string, TestBackend | TestBackend[]>, aggregate: string): string {
  return `${upstreamsYaml(list)}routes:\n  - match: { path: /dash }\n    aggregate:\n${aggregate}`;
}

/** One GET, with the time until its headers arrived. */
async function timedFetch(url: string): Promise<{ res: Response; elapsed: number }> {
  const started = performance.now();
  const res = await fetch(url);
  return { res, elapsed: performance.now() - started };
}

describe('fan-out: one request, several backend calls, one merged answer', () => {
  it('merges every part by name, fills path templates from route params and query (encoded), passes only allowlisted headers', async () => {
    const s = await services({
      users: (url) => ({ body: { id: decodeURIComponent(url.split('/')[2]!), name: 'Ada' } }),
      orders: () => ({ body: [{ id: 1 }, { id: 2 }] }),
      recs: () => ({ body: { data: { items: ['book', 'lamp'] } } }),
    });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - match: { path: /api/dashboard/:userId, methods: [GET] }
    aggregate:
      timeout: 2s
      parts:
        profile: { upstream: users,  path: "/users/{userId}", required: true }
        orders:  { upstream: orders, path: "/orders?user={userId}&region={region}", timeout: 1s }
        recs:    { upstream: recs,   path: "/recs/{userId}", select: data.items }
`);
    const res = await fetch(`${live.gateway.url}/api/dashboard/a%20b%2Bc?region=eu%26west`, {
      headers: {
        authorization: 'Bearer t0k',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        cookie: 'session=secret',
        'x-request-id': 'req-1',
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('spillway-partial')).toBeNull();
    expect(await res.json()).toEqual({
      profile: { id: 'a b+c', name: 'Ada' },
      orders: [{ id: 1 }, { id: 2 }],
      recs: ['book', 'lamp'],
    });
    expect(s.users!.received[0]!.url).toBe('/users/a%20b%2Bc');
    expect(s.orders!.received[0]!.url).toBe('/orders?user=a%20b%2Bc&region=eu%26west');
    const headers = s.users!.received[0]!.headers;
    expect(headers.authorization).toBe('Bearer t0k');
    expect(headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(headers['x-request-id']).toBe('req-1');
    expect(headers.cookie).toBeUndefined();
    expect(headers.accept).toBe('application/json');
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('runs the parts in parallel: three 600 ms parts answer in about 600 ms, not 1800', async () => {
    const s = await services({ a: () => ({ delayMs: 600 }), b: () => ({ delayMs: 600 }), c: () => ({ delayMs: 600 }) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      parts:
        a: { upstream: a, path: /a }
        b: { upstream: b, path: /b }
        c: { upstream: c, path: /c }
`,
      ),
    );
    const { res, elapsed } = await timedFetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(200);
    expect(Object.keys((await res.json()) as object)).toEqual(['a', 'b', 'c']);
    // every part reached its backend before the first one could answer (600 ms after it arrived)
    const arrivals = [s.a!, s.b!, s.c!].map((backend) => backend.received[0]!.at);
    expect(Math.max(...arrivals)).toBeLessThan(Math.min(...arrivals) + 600);
    expect(elapsed).toBeGreaterThanOrEqual(590);
    // one after another would take at least 1800 ms
    expect(elapsed).toBeLessThan(1_800);
  });

  it('optional parts that are slow, failing, not JSON or too large: 200 with the others, those null, a spillway-partial header and a problem per part', async () => {
    const s = await services({
      users: () => ({ body: { id: 7 } }),
      slow: () => ({ delayMs: 20_000 }),
      broken: () => ({ status: 500, body: { error: 'boom' } }),
      html: () => ({ body: '<html>oops</html>', headers: { 'content-type': 'text/html' } }),
      huge: () => ({ body: { blob: 'x'.repeat(10_000) } }),
    });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      timeout: 8s
      maxPartBody: 4kb
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs:    { upstream: slow, path: /r, timeout: 150ms }
        orders:  { upstream: broken, path: /o }
        news:    { upstream: html, path: /n }
        feed:    { upstream: huge, path: /f }
`,
      ),
    );
    const { res, elapsed } = await timedFetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(200);
    // the part's own 150 ms timeout ended it: neither the slow answer (20 s) nor the route's deadline (8 s)
    expect(elapsed).toBeLessThan(5_000);
    expect(res.headers.get('spillway-partial')).toBe('recs, orders, news, feed');
    const body = (await res.json()) as Record<string, unknown> & { _errors: Record<string, Problem> };
    expect(body).toMatchObject({ profile: { id: 7 }, recs: null, orders: null, news: null, feed: null });
    expect(body._errors.recs).toMatchObject({
      type: 'urn:spillway:problem:aggregate-part-timeout',
      status: 504,
      part: 'recs',
      upstream: 'slow',
    });
    expect(body._errors.orders).toMatchObject({
      type: 'urn:spillway:problem:aggregate-part-status',
      status: 502,
      upstreamStatus: 500,
      part: 'orders',
    });
    expect(body._errors.news).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-invalid-body', part: 'news' });
    expect(body._errors.feed).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-too-large', part: 'feed' });
    expect(Object.keys(body._errors)).toEqual(['recs', 'orders', 'news', 'feed']);
    // the slow part's late answer is not waited for: its connection is closed, not left hanging
    await waitUntil(() => s.slow!.activeRequests() === 0, { message: 'the slow backend to see its request aborted' });
  });

  it('a required part that fails → 502 problem+json naming the part and its cause; the others are aborted', async () => {
    const s = await services({ users: () => ({ status: 503, body: { error: 'down' } }), slow: () => ({ delayMs: 20_000 }) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs:    { upstream: slow, path: /r }
`,
      ),
    );
    const { res, elapsed } = await timedFetch(`${live.gateway.url}/dash`);
    // answered when the required part failed, not when the slow part would have answered (20 s)
    expect(elapsed).toBeLessThan(5_000);
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as Problem;
    expect(problem).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-failed', status: 502, part: 'profile', upstream: 'users' });
    expect(problem.cause).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-status', upstreamStatus: 503 });
    await waitUntil(() => s.slow!.activeRequests() === 0, { message: 'the slow backend to see its request aborted' });
  });

  it('a required part that cannot be reached → 502, never 500', async () => {
    const s = await services({ recs: () => ({}) });
    live.gateway = await startGateway(`upstreams:
  users:
    backends: [{ url: "http://127.0.0.1:1" }]
  recs:
    backends: [{ url: ${s.recs!.url} }]
routes:
  - match: { path: /dash }
    aggregate:
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs:    { upstream: recs, path: /r }
`);
    const res = await fetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as Problem).cause).toMatchObject({ type: 'urn:spillway:problem:upstream-unreachable' });
  });

  it('the overall deadline passes before a required part answers → 504 at the deadline, and no socket is left open', async () => {
    const s = await services({ users: () => ({ delayMs: 20_000 }), recs: () => ({ delayMs: 20_000 }), fast: () => ({}) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      timeout: 300ms
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs:    { upstream: recs, path: /r }
        quick:   { upstream: fast, path: /q }
`,
      ),
    );
    const { res, elapsed } = await timedFetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(504);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    // at the 300 ms deadline, not when the parts would answer (20 s)
    expect(elapsed).toBeLessThan(5_000);
    expect((await res.json()) as Problem).toMatchObject({
      type: 'urn:spillway:problem:aggregate-timeout',
      status: 504,
      parts: ['profile'],
    });
    await waitUntil(() => s.users!.activeRequests() === 0 && s.recs!.activeRequests() === 0, {
      message: 'users and recs to see their requests aborted',
    });
    const view = (await (await fetch(`${live.gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: Record<string, { backends: Array<{ inFlight: number }> }>;
    };
    for (const upstream of Object.values(view.upstreams)) expect(upstream.backends[0]!.inFlight).toBe(0);
  });

  it('the deadline with only optional parts missing → 200 partial with those parts timed out', async () => {
    const s = await services({ users: () => ({ body: { id: 1 } }), recs: () => ({ delayMs: 3_000 }) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      timeout: 250ms
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs:    { upstream: recs, path: /r }
`,
      ),
    );
    const res = await fetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(200);
    expect(res.headers.get('spillway-partial')).toBe('recs');
    const body = (await res.json()) as { recs: unknown; _errors: Record<string, Problem> };
    expect(body.recs).toBeNull();
    expect(body._errors.recs).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-timeout' });
    await waitUntil(() => s.recs!.activeRequests() === 0, { message: 'recs to see its request aborted' });
  });

  it('a part whose backend answers 429 fails over to the next backend of its pool', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '5000' });
    live.backends.push(throttling);
    const s = await services({ spare: () => ({ body: { from: 'spare' } }), users: () => ({ body: { id: 1 } }) });
    live.gateway = await startGateway(
      dashRoute(
        { recs: [throttling, s.spare!], users: s.users! },
        `
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs:    { upstream: recs, path: /r }
`,
      ),
    );
    const res = await fetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ profile: { id: 1 }, recs: { from: 'spare' } });
    expect(throttling.received).toHaveLength(1);
    expect(s.spare!.received).toHaveLength(1);
    // the throttled backend is cooling down: the next request goes straight to the spare
    expect((await fetch(`${live.gateway.url}/dash`)).status).toBe(200);
    expect(throttling.received).toHaveLength(1);
  });

  it('a required part whose whole pool is cooling down → 429 with Retry-After', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '5000' });
    live.backends.push(throttling);
    live.gateway = await startGateway(
      dashRoute(
        { users: throttling },
        `
      parts:
        profile: { upstream: users, path: /u, required: true }
`,
      ),
    );
    const res = await fetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await res.json()) as Problem).toMatchObject({
      type: 'urn:spillway:problem:all-backends-throttled',
      part: 'profile',
      upstream: 'users',
    });
  });
});

describe("then: a part that needs another part's answer", () => {
  it('starts as soon as its input arrives, with the value URL-encoded, while slower parts still run', async () => {
    const s = await services({
      users: () => ({ delayMs: 100, body: { customerId: 'c 7/x', name: 'Ada' } }),
      orders: () => ({ body: { items: [{ id: 1 }] } }),
      recs: () => ({ delayMs: 1_500, body: ['lamp'] }),
    });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - match: { path: /api/dashboard/:userId }
    aggregate:
      parts:
        profile:
          upstream: users
          path: /users/{userId}
          required: true
          then:
            orders: { upstream: orders, path: "/orders?customer={profile.customerId}", select: items }
        recs: { upstream: recs, path: /recs }
`);
    const res = await fetch(`${live.gateway.url}/api/dashboard/42`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ profile: { customerId: 'c 7/x', name: 'Ada' }, orders: [{ id: 1 }], recs: ['lamp'] });
    expect(s.orders!.received[0]!.url).toBe('/orders?customer=c%207%2Fx');
    // orders ran right after profile (~100 ms), before the slow recs part answered (1.5 s after it arrived)
    expect(s.orders!.received[0]!.at).toBeLessThan(s.recs!.received[0]!.at + 1_500);
  });

  it('when the part it depends on fails, the dependent part is skipped (424 problem), and a missing field too', async () => {
    const s = await services({ users: () => ({ status: 404, body: {} }), other: () => ({ body: { nothing: true } }), orders: () => ({}) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      parts:
        profile:
          upstream: users
          path: /u
          then:
            orders: { upstream: orders, path: "/orders?customer={profile.customerId}" }
        account:
          upstream: other
          path: /a
          then:
            invoices: { upstream: orders, path: "/invoices/{account.customerId}" }
`,
      ),
    );
    const res = await fetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(200);
    expect(res.headers.get('spillway-partial')).toBe('profile, orders, invoices');
    const body = (await res.json()) as Record<string, unknown> & { _errors: Record<string, Problem> };
    expect(body).toMatchObject({ profile: null, orders: null, account: { nothing: true }, invoices: null });
    expect(body._errors.orders).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-skipped', status: 424 });
    expect(body._errors.invoices).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-skipped' });
    expect(s.orders!.received).toHaveLength(0);
  });
});

describe('merge modes, select, inputs, telemetry', () => {
  it("merge: deep merges the parts' objects; select picks a field", async () => {
    const s = await services({
      users: () => ({ body: { user: { id: 1, name: 'Ada' }, flags: { beta: true } } }),
      prefs: () => ({ body: { data: { user: { theme: 'dark' }, flags: { beta: false, new: 1 } } } }),
    });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - match: { path: /me }
    aggregate:
      merge: deep
      parts:
        profile: { upstream: users, path: /u }
        prefs:   { upstream: prefs, path: /p, select: data }
`);
    const res = await fetch(`${live.gateway.url}/me`);
    expect(await res.json()).toEqual({ user: { id: 1, name: 'Ada', theme: 'dark' }, flags: { beta: false, new: 1 } });
  });

  it('a query value a required part needs is missing → 400; an optional one → that part null', async () => {
    const s = await services({ users: () => ({}), orders: () => ({}) });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - match: { path: /a }
    aggregate:
      parts:
        profile: { upstream: users, path: "/users/{id}", required: true }
  - match: { path: /b }
    aggregate:
      parts:
        profile: { upstream: users, path: "/users/1" }
        orders:  { upstream: orders, path: "/orders?since={since}" }
`);
    const a = await fetch(`${live.gateway.url}/a`);
    expect(a.status).toBe(400);
    expect((await a.json()) as Problem).toMatchObject({ type: 'urn:spillway:problem:aggregate-input-missing', part: 'profile' });
    expect((await fetch(`${live.gateway.url}/a?id=5`)).status).toBe(200);
    expect(s.users!.received.at(-1)!.url).toBe('/users/5');
    const b = await fetch(`${live.gateway.url}/b`);
    expect(b.status).toBe(200);
    expect(b.headers.get('spillway-partial')).toBe('orders');
    expect(s.orders!.received).toHaveLength(0);
  });

  it('reports every part and the response through the observer', async () => {
    const parts: Array<[string, string]> = [];
    const responses: Array<[boolean, number]> = [];
    const observer = withDefaults({
      aggregatePart: (_route, part, outcome) => parts.push([part, outcome]),
      aggregateResponse: (_route, partial, status) => responses.push([partial, status]),
    });
    const s = await services({ users: () => ({}), slow: () => ({ delayMs: 2_000 }), broken: () => ({ status: 500 }) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      parts:
        profile: { upstream: users, path: /u }
        recs:    { upstream: slow, path: /r, timeout: 100ms }
        orders:  { upstream: broken, path: /o }
`,
      ),
      { observer },
    );
    expect((await fetch(`${live.gateway.url}/dash`)).status).toBe(200);
    expect(parts.sort()).toEqual([
      ['orders', 'error'],
      ['profile', 'ok'],
      ['recs', 'timeout'],
    ]);
    expect(responses).toEqual([[true, 200]]);
  });

  it('plain routes are untouched: a :param route can also forward to an upstream', async () => {
    const s = await services({ users: () => ({}) });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - match: { path: /users/:id/profile }
    upstream: users
`);
    expect((await fetch(`${live.gateway.url}/users/9/profile`)).status).toBe(200);
    expect((await fetch(`${live.gateway.url}/users/9/other`)).status).toBe(404);
    expect((await fetch(`${live.gateway.url}/users//profile`)).status).toBe(404);
  });
});

describe('aggregate edge cases', () => {
  it('a client that goes away aborts every part still in flight', async () => {
    const s = await services({ a: () => ({ delayMs: 3_000 }), b: () => ({ delayMs: 3_000 }) });
    live.gateway = await startGateway(
      dashRoute(
        s,
        `
      parts:
        a: { upstream: a, path: /a, required: true }
        b: { upstream: b, path: /b }
`,
      ),
    );
    const { request } = await import('node:http');
    const req = request(`${live.gateway.url}/dash`, { agent: false });
    req.on('error', () => undefined);
    req.end();
    await waitUntil(() => s.a!.activeRequests() === 1 && s.b!.activeRequests() === 1, { message: 'both parts in flight' });
    req.destroy();
    await waitUntil(() => s.a!.activeRequests() === 0 && s.b!.activeRequests() === 0, {
      message: 'both parts aborted after the client left',
    });
  });

  it('decodes gzip part answers, bounded by maxPartBody', async () => {
    const { gzipSync } = await import('node:zlib');
    const small = gzipSync(JSON.stringify({ ok: true }));
    const bomb = gzipSync(JSON.stringify({ blob: 'x'.repeat(200_000) }));
    const s = await services({ users: () => ({}) });
    const zipped = await startBackend((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(req.url === '/small' ? small : bomb);
    }, 'zipped');
    live.backends.push(zipped);
    live.gateway = await startGateway(
      dashRoute(
        { ...s, zipped },
        `
      maxPartBody: 64kb
      parts:
        small: { upstream: zipped, path: /small }
        bomb:  { upstream: zipped, path: /bomb }
`,
      ),
    );
    const res = await fetch(`${live.gateway.url}/dash`);
    const body = (await res.json()) as Record<string, unknown> & { _errors: Record<string, Problem> };
    expect(body.small).toEqual({ ok: true });
    expect(body.bomb).toBeNull();
    expect(body._errors.bomb).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-too-large' });
  });

  it('an answer nested too deeply to merge fails its part, not the process', async () => {
    const deep = '['.repeat(300_000) + ']'.repeat(300_000);
    const s = await services({ users: () => ({ body: { id: 1 } }), weird: () => ({ body: deep }) });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - match: { path: /opt }
    aggregate:
      maxPartBody: 1mb
      parts:
        profile: { upstream: users, path: /u }
        weird: { upstream: weird, path: /w }
  - match: { path: /req }
    aggregate:
      maxPartBody: 1mb
      parts:
        profile: { upstream: users, path: /u }
        weird: { upstream: weird, path: /w, required: true }
`);
    const optional = await fetch(`${live.gateway.url}/opt`);
    expect(optional.status).toBe(200);
    const body = (await optional.json()) as Record<string, unknown> & { _errors: Record<string, Problem> };
    expect(body).toMatchObject({ profile: { id: 1 }, weird: null });
    expect(body._errors.weird).toMatchObject({ type: 'urn:spillway:problem:aggregate-part-invalid-body' });
    const required = await fetch(`${live.gateway.url}/req`);
    expect(required.status).toBe(502);
    expect((await required.json()) as Problem).toMatchObject({ part: 'weird' });
    expect((await fetch(`${live.gateway.url}/opt`)).status).toBe(200);
  });

  it("GET /admin/routes shows the aggregate's parts and the calls per upstream", async () => {
    const s = await services({ users: () => ({}), recs: () => ({}) });
    live.gateway = await startGateway(`${upstreamsYaml(s)}routes:
  - name: dashboard
    match: { path: /dash }
    aggregate:
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs: { upstream: recs, path: /r }
`);
    await (await fetch(`${live.gateway.url}/dash`)).arrayBuffer();
    const view = (await (await fetch(`${live.gateway.adminUrl}/admin/routes`)).json()) as { routes: Array<Record<string, unknown>> };
    expect(view.routes[0]).toMatchObject({
      name: 'dashboard',
      action: 'aggregate',
      requests: 1,
      upstreams: { users: 1, recs: 1 },
      parts: [
        { name: 'profile', upstream: 'users', required: true },
        { name: 'recs', upstream: 'recs', required: false },
      ],
    });
  });
});
