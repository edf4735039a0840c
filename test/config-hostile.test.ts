// Hostile config files: what `spillway check` and config loading say about a regex that can
// backtrack for seconds, a YAML alias bomb, and numbers large enough to break arithmetic —
// always a file:line config error, never a stack trace or a stalled event loop.

import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from './helpers/backend.js';
import { issuesOf } from './helpers/config.js';
import { runCli, startGateway, writeTempConfig, type TestGateway } from './helpers/gateway.js';

let gateway: TestGateway | undefined;
let backend: TestBackend | undefined;
afterEach(async () => {
  await gateway?.close();
  await backend?.close();
  gateway = backend = undefined;
});

const base = `upstreams:
  app: { backends: [ { url: "http://127.0.0.1:9" } ] }
`;

function withHeaderRegex(pattern: string): string {
  return `${base}routes:
  - match:
      path: /
      headers:
        x-token: { regex: '${pattern}' }
    upstream: app
`;
}

describe('regexes that backtrack catastrophically', () => {
  it('spillway check refuses ^(a+)+$ with file:line naming the pattern, exit 1', async () => {
    const file = await writeTempConfig(withHeaderRegex('^(a+)+$'));
    const result = await runCli(['check', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:7:`);
    expect(result.stderr).toContain('"^(a+)+$"');
    expect(result.stderr).toContain('nests quantifiers');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('loading refuses every nested-quantifier pattern, and keeps plain ones', () => {
    for (const pattern of ['^(a+)+$', '(x+x+)+y', '^(\\w+\\s?)*$', '([a-z]*)*']) {
      const [issue] = issuesOf(withHeaderRegex(pattern));
      expect(issue).toMatchObject({ line: 7, path: 'routes[0].match.headers.x-token.regex' });
      expect(issue!.message).toContain(JSON.stringify(pattern));
    }
    expect(() => issuesOf(withHeaderRegex('^[a-z0-9-]+$'))).toThrow('config was accepted');
  });

  it('a hostile 8 KB value against an accepted pattern is answered without stalling the loop', async () => {
    backend = await startBackend(undefined, 'ok');
    gateway = await startGateway(`upstreams:
  app: { backends: [ { url: ${backend.url} } ] }
routes:
  - match: { path: /, headers: { x-token: { regex: '^[a-z]+$' } } }
    respond: { status: 403 }
  - match: { path: / }
    upstream: app
`);
    const hostile = `${'a'.repeat(8 * 1024)}!`;
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      const res = await fetch(`${gateway.url}/x`, { headers: { 'x-token': hostile } });
      await res.text();
      times.push(performance.now() - started);
      expect(res.status).toBe(200);
    }
    // Wide margin for a busy machine; ^(a+)+$ took ~6 s on a 28-character value.
    expect(Math.min(...times)).toBeLessThan(50);
  });
});

describe('YAML alias bombs', () => {
  const bomb = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
${base}routes: [ { match: { path: / }, upstream: app } ]
`;

  it('spillway check answers a file:line config error, not a ReferenceError stack', async () => {
    const file = await writeTempConfig(bomb);
    const result = await runCli(['check', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:2:`);
    expect(result.stderr).toContain('aliases expand too many times');
    expect(result.stderr).not.toContain('ReferenceError');
  });

  it('loading throws a ConfigError at the first alias', () => {
    expect(issuesOf(bomb)).toEqual([expect.objectContaining({ line: 2, column: 8, message: expect.stringContaining('alias') })]);
  });
});

describe('numeric bounds', () => {
  it('refuses weights, capacities and durations that overflow', () => {
    const issues = issuesOf(`upstreams:
  app:
    backends:
      - { url: "http://127.0.0.1:9", weight: 1e308 }
      - { url: "http://127.0.0.1:10" }
    timeouts: { connect: 99999999d }
rateLimits:
  p: { key: ip, capacity: 1e308, refill: 10/s }
routes: [ { match: { path: / }, upstream: app, rateLimit: p } ]
`);
    expect(issues.map((i) => [i.line, i.path])).toEqual([
      [4, 'upstreams.app.backends[0].weight'],
      [6, 'upstreams.app.timeouts.connect'],
      [8, 'rateLimits.p.capacity'],
    ]);
    expect(issues[1]!.message).toContain('at most 24d');
  });

  it('limits.maxMemoryBuckets is a bounded positive integer', () => {
    const [issue] = issuesOf(`limits: { maxMemoryBuckets: 0 }\n${base}routes: [ { match: { path: / }, upstream: app } ]\n`);
    expect(issue).toMatchObject({ line: 1, path: 'limits.maxMemoryBuckets' });
  });
});
