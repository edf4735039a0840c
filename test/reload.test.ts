// Hot reload: watch, SIGHUP and POST /admin/reload; invalid files rejected with file:line errors
// while the old config keeps serving; backend state survives; GET /admin/config.

import { writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../src/snapshot/reload.js';
import { withDefaults } from '../src/snapshot/observer.js';
import { closeAll, startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { startCli, writeTempConfig } from './helpers/gateway.js';
import { LISTEN, startGatewayFromFile, steadyLoad } from './helpers/reload.js';
import { waitUntil } from './helpers/wait.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await closeAll(...open.splice(0));
});

const upstreams = (legacy: TestBackend, orders: TestBackend) => `upstreams:
  legacy: { backends: [ { url: ${legacy.url} } ] }
  orders: { backends: [ { url: ${orders.url} } ] }
`;

const text = (url: string) => fetch(url).then(async (r) => ({ status: r.status, body: await r.text() }));

describe('reload', () => {
  it('under steady load: a valid config swaps in, an invalid one is rejected with file:line errors, no request fails', async () => {
    const legacy = await startBackend(undefined, 'legacy');
    const orders = await startBackend(undefined, 'orders');
    open.push(legacy, orders);
    const reloads: string[] = [];
    const gw = await startGatewayFromFile(
      `${upstreams(legacy, orders)}routes:
  - { name: orders, match: { path: /api/orders }, upstream: orders }
  - { name: rest, upstream: legacy }
`,
      { observer: withDefaults({ configReload: (result) => reloads.push(result) }) },
    );
    open.push(gw);
    expect(JSON.parse((await text(`${gw.url}/api/users/1`)).body).backend).toBe('legacy');

    const load = steadyLoad(gw.url, ['/api/orders/1', '/home', '/api/users/7']);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const v2 = `${upstreams(legacy, orders)}routes:
  - { name: orders, match: { path: /api/orders }, upstream: orders }
  - name: users
    match: { path: /api/users/:id }
    respond: { status: 200, body: { served: "v2" } }
  - { name: rest, upstream: legacy }
`;
    await gw.rewrite(v2);
    const ok = await fetch(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ result: 'ok', trigger: 'admin', errors: [] });
    expect(JSON.parse((await text(`${gw.url}/api/users/1`)).body)).toEqual({ served: 'v2' });
    await new Promise((resolve) => setTimeout(resolve, 100));

    await gw.rewrite(`${upstreams(legacy, orders)}routes:
  - { name: orders, match: { path: /api/orders }, upstream: orders }
  - name: users
    match: { path: /api/users/:id }
    upstream: ghost
  - { name: rest, upstream: legacy, rewrite: { stripPrefix: nope } }
`);
    const rejected = await fetch(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(rejected.status).toBe(422);
    expect(rejected.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await rejected.json()) as { type: string; errors: string[] };
    expect(problem.type).toBe('urn:spillway:problem:config-rejected');
    expect(problem.errors).toEqual([
      `${gw.file}:10:15 routes[1].upstream: unknown upstream "ghost" (defined: legacy, orders)`,
      `${gw.file}:11:61 routes[2].rewrite.stripPrefix: a path starts with "/"`,
    ]);
    // the old (v2) config keeps serving
    expect(JSON.parse((await text(`${gw.url}/api/users/1`)).body)).toEqual({ served: 'v2' });
    await new Promise((resolve) => setTimeout(resolve, 100));

    const { total, failures } = await load.stop();
    expect(failures).toEqual([]);
    expect(total).toBeGreaterThan(20);

    // logged, counted, and shown on the admin API
    const logged = gw.logs.events('config.reload');
    expect(logged.map((l) => l.result)).toEqual(['ok', 'rejected']);
    expect(logged[1]!.errors).toEqual(problem.errors);
    expect(reloads).toEqual(['ok', 'rejected']);
    const config = (await (await fetch(`${gw.adminUrl}/admin/config`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({ file: gw.file, loadedBy: 'admin', sha256: sha256(LISTEN + v2), reloads: { ok: 1, rejected: 1 } });
    expect(config.lastReload).toMatchObject({ result: 'rejected', trigger: 'admin', errors: problem.errors });
    expect((config.config as { routes: Array<{ name: string }> }).routes.map((r) => r.name)).toEqual(['orders', 'users', 'rest']);
  });

  it('backend state survives a reload: a cooling backend stays cooling; a removed one is dropped', async () => {
    const throttled = await startStaticBackend(429, { 'retry-after': '30' }, '', 'throttled');
    const other = await startBackend(undefined, 'other');
    open.push(throttled, other);
    const config = (routeName: string, withOther: boolean) => `upstreams:
  llm: { backends: [ { url: ${throttled.url} } ] }
${withOther ? `  spare: { backends: [ { url: ${other.url} } ] }\n` : ''}routes:
  - { name: ${routeName}, match: { path: /v1/ }, upstream: llm }
${withOther ? '  - { name: spare, upstream: spare }\n' : ''}`;
    const gw = await startGatewayFromFile(config('chat', true));
    open.push(gw);

    const first = await fetch(`${gw.url}/v1/chat`);
    expect(first.status).toBe(429);
    await first.arrayBuffer();
    expect(throttled.received).toHaveLength(1);
    const before = (await (await fetch(`${gw.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: Record<string, { backends: Array<{ state: string; cooldownUntil: string }> }>;
    };
    expect(before.upstreams.llm!.backends[0]!.state).toBe('cooling');
    expect(gw.gateway.states.size).toBe(2);

    await gw.rewrite(config('chat-renamed', false));
    expect((await gw.gateway.reloader.reload('api')).result).toBe('ok');

    const after = (await (await fetch(`${gw.adminUrl}/admin/upstreams`)).json()) as typeof before;
    expect(after.upstreams.llm!.backends[0]).toMatchObject({
      state: 'cooling',
      cooldownUntil: before.upstreams.llm!.backends[0]!.cooldownUntil,
    });
    expect(gw.gateway.states.size).toBe(1);
    // answered by the gateway itself: the cooling backend is not called again
    const second = await fetch(`${gw.url}/v1/chat`);
    expect(second.status).toBe(429);
    expect(((await second.json()) as { type: string }).type).toBe('urn:spillway:problem:all-backends-throttled');
    expect(throttled.received).toHaveLength(1);
  });

  it('requests in flight finish on the config they started with', async () => {
    const slow = await startBackend(async (_req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('old config');
    });
    open.push(slow);
    const gw = await startGatewayFromFile(
      `upstreams:\n  app: { backends: [ { url: ${slow.url} } ] }\nroutes:\n  - { name: app, upstream: app }\n`,
    );
    open.push(gw);
    const inFlight = text(`${gw.url}/report`);
    await waitUntil(() => slow.received.length === 1, { message: 'the request to reach the slow backend' });
    await gw.rewrite(
      `upstreams:\n  app: { backends: [ { url: ${slow.url} } ] }\nroutes:\n  - { name: gone, respond: { status: 410, body: retired } }\n`,
    );
    expect((await gw.gateway.reloader.reload('api')).result).toBe('ok');
    expect(await text(`${gw.url}/report`)).toEqual({ status: 410, body: 'retired' });
    expect(await inFlight).toEqual({ status: 200, body: 'old config' });
  });

  it('a change of the file is picked up by the watcher (and an invalid save is rejected)', async () => {
    const legacy = await startBackend(undefined, 'legacy');
    const orders = await startBackend(undefined, 'orders');
    open.push(legacy, orders);
    const gw = await startGatewayFromFile(
      `reload: { watch: true, debounce: 30ms }\n${upstreams(legacy, orders)}routes:\n  - { name: rest, upstream: legacy }\n`,
    );
    open.push(gw);
    gw.gateway.reloader.watch(30);
    await gw.rewrite(
      `reload: { watch: true, debounce: 30ms }\n${upstreams(legacy, orders)}routes:\n  - { name: rest, upstream: orders }\n`,
    );
    const served = await waitUntil(async () => JSON.parse((await text(`${gw.url}/x`)).body).backend as string, {
      until: (b) => b === 'orders',
      message: 'the watcher to reload and route to orders',
    });
    expect(served).toBe('orders');
    expect(gw.gateway.reloader.last).toMatchObject({ result: 'ok', trigger: 'watch' });

    await gw.rewrite(`reload: { watch: true, debounce: 30ms }\n${upstreams(legacy, orders)}routes:\n  - { name: rest, upstream: [oops\n`);
    const last = await waitUntil(() => gw.gateway.reloader.last, {
      until: (l) => l?.result === 'rejected',
      message: 'the invalid save to be rejected',
    });
    expect(last?.errors[0]).toMatch(new RegExp(`^${gw.file}:\\d+:\\d+ `));
    expect(JSON.parse((await text(`${gw.url}/x`)).body).backend).toBe('orders');
    // one save, one verdict: the watcher's repeated events for the same text are not re-counted
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(gw.gateway.reloader.counts).toMatchObject({ ok: 1, rejected: 1 });
  });

  it('SIGHUP reloads the CLI gateway', async () => {
    const legacy = await startBackend(undefined, 'legacy');
    const orders = await startBackend(undefined, 'orders');
    open.push(legacy, orders);
    const file = await writeTempConfig(
      `${LISTEN}reload: { watch: false }\n${upstreams(legacy, orders)}routes:\n  - { name: rest, upstream: legacy }\n`,
    );
    const cli = await startCli(file);
    open.push({ close: async () => void (await cli.stop()) });
    expect(JSON.parse((await text(`${cli.url}/x`)).body).backend).toBe('legacy');
    await writeFile(file, `${LISTEN}reload: { watch: false }\n${upstreams(legacy, orders)}routes:\n  - { name: rest, upstream: orders }\n`);
    cli.child.kill('SIGHUP');
    const served = await waitUntil(async () => JSON.parse((await text(`${cli.url}/x`)).body).backend as string, {
      until: (b) => b === 'orders',
      message: 'SIGHUP to reload and route to orders',
    });
    expect(served).toBe('orders');
    const config = (await (await fetch(`${cli.adminUrl}/admin/config`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({ loadedBy: 'SIGHUP', reloads: { ok: 1, rejected: 0 } });
    expect(cli.lines.some((l) => l.event === 'config.reload' && l.result === 'ok' && l.trigger === 'SIGHUP')).toBe(true);
  });

  it('GET /admin/config shows the active config with secrets redacted', async () => {
    const legacy = await startBackend(undefined, 'legacy');
    open.push(legacy);
    const gw = await startGatewayFromFile(`upstreams:
  legacy: { backends: [ { url: ${legacy.url} } ] }
routes:
  - name: beta
    match: { path: /beta, headers: { x-beta: "yes" } }
    upstream: legacy
    rewrite: { requestHeaders: { set: { authorization: "Bearer sk-live-123", x-team: blue } } }
  - { name: rest, upstream: legacy }
`);
    open.push(gw);
    const response = await fetch(`${gw.adminUrl}/admin/config`);
    const raw = await response.text();
    expect(raw).not.toContain('sk-live-123');
    const view = JSON.parse(raw) as {
      file: string;
      loadedAt: string;
      loadedBy: string;
      config: { routes: Array<Record<string, unknown>> };
    };
    expect(view).toMatchObject({ file: gw.file, loadedBy: 'startup' });
    expect(Date.parse(view.loadedAt)).toBeGreaterThan(0);
    expect(view.config.routes[0]).toMatchObject({
      match: { path: '/beta', headers: { 'x-beta': '[redacted]' } },
      rewrite: { requestHeaders: { set: { authorization: '[redacted]', 'x-team': '[redacted]' } } },
    });
  });
});
