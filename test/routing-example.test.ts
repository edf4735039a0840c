import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ROOT, runCli, writeTempConfig } from './helpers/gateway.js';

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
