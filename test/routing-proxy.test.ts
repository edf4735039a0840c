// Routing through a real gateway: normalisation attacks, rewrites, header rewrites, static
// responses, and the per-rule counters of GET /admin/routes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { httpRequest, rawRequest } from './helpers/http.js';

let legacy: TestBackend;
let orders: TestBackend;
let admin: TestBackend;
let gw: TestGateway;

beforeAll(async () => {
  legacy = await startBackend(undefined, 'legacy');
  orders = await startBackend((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', server: 'orders/1.0', 'x-internal': 'secret' });
    res.end(JSON.stringify({ backend: 'orders', url: req.url, headers: req.headers }));
  }, 'orders');
  admin = await startBackend(undefined, 'admin');
  gw = await startGateway(`
upstreams:
  legacy: { backends: [ { url: ${legacy.url} } ] }
  orders: { backends: [ { url: ${orders.url} } ] }
  admin: { backends: [ { url: ${admin.url} } ] }
routes:
  - name: internal-admin
    match: { path: /api/admin, headers: { x-admin-token: { present: true } } }
    upstream: admin
  - name: admin-blocked
    match: { path: /api/admin }
    respond: { status: 403, body: { title: "admin is internal" } }
  - name: orders-to-new-service
    match: { path: /api/orders, methods: [GET, POST] }
    upstream: orders
    rewrite:
      stripPrefix: /api
      requestHeaders: { set: { x-migrated: "yes" }, remove: [x-legacy-session] }
      responseHeaders: { set: { x-served-by: orders-v2 }, remove: [server, x-internal] }
  - name: users
    match: { path: /api/users/:id }
    upstream: orders
    rewrite: { path: /v2/people/:id }
  - name: retired
    match: { path: /api/v1/reports }
    respond: { status: 410, body: { title: "Use /api/v2/reports" } }
  - name: moved
    match: { path: /old/:id }
    respond: { status: 301, redirect: /new/items/:id }
  - name: everything-else
    match: { path: / }
    upstream: legacy
`);
});

afterAll(() => closeAll(gw, legacy, orders, admin));

const get = (path: string, headers: Record<string, string> = {}) => rawRequest(gw.url, path, { headers });

describe('normalisation before matching', () => {
  it('dot-segments are resolved before matching, and the backend gets the same path', async () => {
    const before = orders.received.length;
    const response = await get('/api/orders/../admin/users');
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body)).toEqual({ title: 'admin is internal' });
    expect(orders.received.length).toBe(before);

    const legacyResponse = await get('/api/orders/../../admin');
    expect(JSON.parse(legacyResponse.body)).toMatchObject({ backend: 'legacy', url: '/admin' });
  });

  it('duplicate slashes collapse: //api//orders reaches the orders rule as /api/orders', async () => {
    const response = await get('//api//orders//7');
    expect(JSON.parse(response.body)).toMatchObject({ backend: 'orders', url: '/orders/7' });
  });

  it('unreserved characters are decoded: /api/%6Frders is /api/orders', async () => {
    const response = await get('/api/%6Frders/8');
    expect(JSON.parse(response.body)).toMatchObject({ backend: 'orders', url: '/orders/8' });
  });

  it.each([
    '/api/orders/%2e%2e/admin',
    '/api/orders/.%2e/admin',
    '/api/orders%2F..%2Fadmin',
    '/api%2Fadmin',
    '/api/orders/..%2fadmin',
    '/..',
    '/api/orders/..\\admin',
    '/api/%zz',
  ])('%s → 400 ambiguous-path, nothing forwarded', async (path) => {
    const counts = [legacy.received.length, orders.received.length, admin.received.length];
    const response = await get(path);
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(response.body).type).toBe('urn:spillway:problem:ambiguous-path');
    expect([legacy.received.length, orders.received.length, admin.received.length]).toEqual(counts);
  });

  it('header conditions still apply after normalisation', async () => {
    const response = await get('/api/x/../admin/stats', { 'x-admin-token': 't' });
    expect(JSON.parse(response.body)).toMatchObject({ backend: 'admin', url: '/api/admin/stats' });
  });
});

describe('upstream rewrites', () => {
  it('strips the prefix, sets and removes request headers, keeps the query', async () => {
    const response = await get('/api/orders/7?expand=items', { 'x-legacy-session': 'abc', 'x-keep': '1' });
    const body = JSON.parse(response.body);
    expect(body.url).toBe('/orders/7?expand=items');
    expect(body.headers['x-migrated']).toBe('yes');
    expect(body.headers['x-legacy-session']).toBeUndefined();
    expect(body.headers['x-keep']).toBe('1');
  });

  it('sets and removes response headers', async () => {
    const response = await get('/api/orders');
    expect(response.headers['x-served-by']).toBe('orders-v2');
    expect(response.headers.server).toBeUndefined();
    expect(response.headers['x-internal']).toBeUndefined();
  });

  it('methods outside the rule fall through to the next rule', async () => {
    const response = await httpRequest(`${gw.url}/api/orders/7`, { method: 'DELETE' });
    expect(JSON.parse(response.body)).toMatchObject({ backend: 'legacy', url: '/api/orders/7' });
  });

  it('templates the path from params', async () => {
    const response = await get('/api/users/42/orders?x=1');
    expect(JSON.parse(response.body).url).toBe('/v2/people/42/orders?x=1');
  });
});

describe('respond', () => {
  it('answers a retired endpoint itself', async () => {
    const before = legacy.received.length;
    const response = await get('/api/v1/reports/2019');
    expect(response.status).toBe(410);
    expect(response.headers['content-type']).toBe('application/json');
    expect(JSON.parse(response.body)).toEqual({ title: 'Use /api/v2/reports' });
    expect(legacy.received.length).toBe(before);
  });

  it('redirects with params, keeping the query', async () => {
    const response = await get('/old/17?ref=mail');
    expect(response.status).toBe(301);
    expect(response.headers.location).toBe('/new/items/17?ref=mail');
  });

  it('HEAD gets headers only', async () => {
    const response = await httpRequest(`${gw.url}/api/v1/reports`, { method: 'HEAD' });
    expect(response.status).toBe(410);
    expect(response.body).toBe('');
  });
});

describe('GET /admin/routes', () => {
  it('lists rules in order with request counters', async () => {
    const before = (await (await fetch(`${gw.adminUrl}/admin/routes`)).json()) as { routes: Array<{ name: string; requests: number }> };
    await get('/api/orders/1');
    await get('/api/orders/2');
    await get('/api/v1/reports');
    const view = (await (await fetch(`${gw.adminUrl}/admin/routes`)).json()) as { routes: Array<Record<string, unknown>> };
    expect(view.routes.map((r) => r.name)).toEqual([
      'internal-admin',
      'admin-blocked',
      'orders-to-new-service',
      'users',
      'retired',
      'moved',
      'everything-else',
    ]);
    const count = (list: Array<{ name: string; requests: number }>, name: string) => list.find((r) => r.name === name)!.requests;
    const routes = view.routes as Array<{ name: string; requests: number }>;
    expect(count(routes, 'orders-to-new-service') - count(before.routes, 'orders-to-new-service')).toBe(2);
    expect(count(routes, 'retired') - count(before.routes, 'retired')).toBe(1);
    expect(view.routes[2]).toMatchObject({
      index: 2,
      action: 'upstream',
      upstreams: { orders: expect.any(Number) },
      match: { path: '/api/orders', methods: ['GET', 'POST'] },
    });
    expect(view.routes[4]).toMatchObject({ action: 'respond', status: 410 });
  });
});
