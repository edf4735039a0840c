import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closeAll, startBackend } from './helpers/backend.js';
import { ROOT, runCli, startCli, writeTempConfig } from './helpers/gateway.js';

describe('config/strangler.yaml', () => {
  it('passes spillway check', async () => {
    const result = await runCli(['check', '--config', join(ROOT, 'config/strangler.yaml')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ok (3 upstreams, 5 routes)');
  });

  it('spillway check prints shadowed rules as warnings (and still exits 0)', async () => {
    const file = await writeTempConfig(`upstreams:
  a: { backends: [ { url: http://127.0.0.1:9 } ] }
routes:
  - name: catch-all
    upstream: a
  - name: orders
    match: { path: /api/orders }
    upstream: a
`);
    const result = await runCli(['check', '--config', file]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`warning: ${file}:6:5 routes[1] route "orders" can never match: "catch-all" (routes[0]) comes first`);
  });
});

describe('config/strangler.yaml, running', () => {
  it('routes each path as the example says and shows it in GET /admin/routes', async () => {
    const legacy = await startBackend(undefined, 'legacy');
    const orders = await startBackend(undefined, 'orders');
    const users = await startBackend(undefined, 'users-v2');
    const yaml = (await readFile(join(ROOT, 'config/strangler.yaml'), 'utf8'))
      .replace('listen: { host: 0.0.0.0, port: 8080 }', 'listen: { host: 127.0.0.1, port: 0 }')
      .replace('admin: { host: 127.0.0.1, port: 9901 }', 'admin: { host: 127.0.0.1, port: 0 }');
    const file = await writeTempConfig(yaml);
    const cli = await startCli(file, { LEGACY_URL: legacy.url, ORDERS_URL: orders.url, USERS_URL: users.url });
    try {
      const json = async (path: string, init?: RequestInit) => {
        const response = await fetch(cli.url + path, { redirect: 'manual', ...init });
        return { status: response.status, headers: response.headers, body: await response.text() };
      };
      expect(JSON.parse((await json('/api/orders/7')).body)).toMatchObject({ backend: 'orders', url: '/orders/7' });
      expect(orders.received.at(-1)!.headers['x-migrated-from']).toBe('legacy');
      expect(JSON.parse((await json('/api/orders/7', { method: 'DELETE' })).body)).toMatchObject({ backend: 'legacy' });
      const sides = new Set<string>();
      for (let i = 0; i < 40; i++)
        sides.add(JSON.parse((await json(`/api/users/${i}`, { headers: { 'x-user-id': `u${i}` } })).body).backend);
      expect([...sides].sort()).toEqual(['legacy', 'users-v2']);
      const retired = await json('/api/v1/reports');
      expect(retired.status).toBe(410);
      const moved = await json('/docs/setup');
      expect([moved.status, moved.headers.get('location')]).toEqual([301, 'https://docs.example.com/setup']);
      expect(JSON.parse((await json('/home')).body)).toMatchObject({ backend: 'legacy' });
      const view = (await (await fetch(`${cli.adminUrl}/admin/routes`)).json()) as { routes: Array<{ name: string; requests: number }> };
      expect(view.routes.map((r) => [r.name, r.requests])).toEqual([
        ['orders-to-new-service', 1],
        ['users-canary', 40],
        ['retired', 1],
        ['moved-docs', 1],
        ['everything-else', 2],
      ]);
    } finally {
      await cli.stop();
      await closeAll(legacy, orders, users);
    }
  });
});
