// Headers at the boundary: Proxy-* never cross it, client-identity headers are believed only
// from listen.trustedProxies, and a key header sent twice is refused instead of joined.

import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

/** One raw request (headers exactly as written, repeated ones included); returns status and body. */
function raw(gatewayUrl: string, target: string, headers: string): Promise<{ status: number; head: string; body: string }> {
  const { port } = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: a\r\n${headers}Connection: close\r\n\r\n`),
    );
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('end', () => {
      const split = data.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), head: data.slice(0, split), body: data.slice(split + 4) });
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
  });
}

const SPOOF =
  'X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nForwarded: for=203.0.113.9;proto=https\r\n' +
  'Proxy-Authorization: Basic eDp5\r\nProxy-Foo: 1\r\nProxy-Connection: keep-alive\r\n';

describe('Proxy-* headers', () => {
  it('are dropped both ways, not only the three named ones', async () => {
    const app = await startBackend((_req, res) => {
      res.writeHead(200, { 'proxy-authenticate': 'Basic', 'proxy-status': 'backend', 'x-ok': '1' });
      res.end('ok');
    });
    live.backends = [app];
    live.gateway = await startGateway(
      `upstreams: { app: { backends: [ { url: ${app.url} } ] } }\nroutes: [ { match: { path: / }, upstream: app } ]\n`,
    );
    const answer = await raw(live.gateway.url, '/x', SPOOF);
    expect(answer.status).toBe(200);
    const seen = app.received[0]!.headers;
    expect(Object.keys(seen).filter((name) => name.startsWith('proxy-'))).toEqual([]);
    expect(answer.head).toMatch(/^x-ok: 1$/im);
    expect(answer.head).not.toMatch(/^proxy-/im);
  });
});

describe('client-identity headers', () => {
  const yaml = (url: string, listenExtra: string) => `listen: { host: 127.0.0.1, port: 0${listenExtra} }
upstreams: { app: { backends: [ { url: ${url} } ] } }
rateLimits:
  per-ip: { key: ip, capacity: 1, refill: 1/h }
routes:
  - match: { path: /limited }
    upstream: app
    rateLimit: per-ip
  - match: { path: / }
    upstream: app
`;

  it('from an untrusted peer: X-Forwarded-For and X-Real-IP are replaced, Forwarded is dropped', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(yaml(app.url, ''));
    expect((await raw(live.gateway.url, '/x', SPOOF)).status).toBe(200);
    const seen = app.received[0]!.headers;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-real-ip']).toBe('127.0.0.1');
    expect(seen.forwarded).toBeUndefined();
    // and the ip rate-limit key is the peer: a second spoofed address gets no fresh bucket
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.1\r\n')).status).toBe(200);
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.2\r\n')).status).toBe(429);
  });

  it('from a peer in listen.trustedProxies: appended / kept, and the ip key believes X-Forwarded-For', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(yaml(app.url, ', trustedProxies: [127.0.0.1/32]'));
    expect((await raw(live.gateway.url, '/x', SPOOF)).status).toBe(200);
    const seen = app.received[0]!.headers;
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-real-ip']).toBe('203.0.113.9');
    expect(seen.forwarded).toBe('for=203.0.113.9;proto=https');
    // the per-policy trustedProxies is unset: listen.trustedProxies decides the ip key
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.1\r\n')).status).toBe(200);
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.2\r\n')).status).toBe(200);
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.1\r\n')).status).toBe(429);
  });

  it('a policy trustedProxies still overrides listen.trustedProxies', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(
      yaml(app.url, ', trustedProxies: [127.0.0.1]').replace('refill: 1/h }', 'refill: 1/h, trustedProxies: [10.0.0.0/8] }'),
    );
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.1\r\n')).status).toBe(200);
    expect((await raw(live.gateway.url, '/limited', 'X-Forwarded-For: 198.51.100.2\r\n')).status).toBe(429);
  });
});

describe('a key header sent twice', () => {
  it('is refused 400, never joined into a fresh key', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(`upstreams: { app: { backends: [ { url: ${app.url} } ] } }
rateLimits:
  per-key: { key: header:x-api-key, capacity: 1, refill: 1/h }
routes: [ { match: { path: / }, upstream: app, rateLimit: per-key } ]
`);
    const url = live.gateway.url;
    expect((await raw(url, '/x', 'x-api-key: alice\r\n')).status).toBe(200);
    expect((await raw(url, '/x', 'x-api-key: alice\r\n')).status).toBe(429);
    const twice = await raw(url, '/x', 'x-api-key: alice\r\nX-Api-Key: other\r\n');
    expect(twice.status).toBe(400);
    expect(JSON.parse(twice.body)).toMatchObject({ type: 'urn:spillway:problem:bad-request' });
    expect(twice.body).toContain('x-api-key header is sent more than once');
    // a single value that contains a comma is still one key
    expect((await raw(url, '/x', 'x-api-key: a,b\r\n')).status).toBe(200);
    expect(app.received).toHaveLength(2);
  });
});

describe('spillway check warns for configs these changes affect', () => {
  it('header keys without auth, proxies trusted by a policy but not by the listener, patterns that cannot match', async () => {
    const { parseConfigText } = await import('../src/config/load.js');
    const { warnings } = parseConfigText(
      `upstreams: { app: { backends: [ { url: "http://127.0.0.1:1" } ] } }
rateLimits:
  per-key: { key: header:x-api-key, capacity: 5, refill: 1/s }
  per-ip: { key: ip, capacity: 5, refill: 1/s, trustedProxies: [10.0.0.0/8] }
routes:
  - { match: { path: "/a;b" }, upstream: app }
  - { match: { path: /files. }, upstream: app }
  - { match: { path: /keyed }, upstream: app, rateLimit: per-key }
  - { match: { path: /authed }, upstream: app, rateLimit: per-key, auth: { apiKeys: { keys: [k1] } } }
  - { match: { path: / }, upstream: app, rateLimit: per-ip }
`,
      'g.yaml',
      {},
    );
    expect(warnings.map((w) => `${w.line} ${w.path}: ${w.message}`)).toEqual([
      expect.stringMatching(/^6 routes\[0\]\.match: rules see paths without ";" parameters/),
      expect.stringMatching(/^7 routes\[1\]\.match: a segment of this pattern ends in "\." or whitespace/),
      expect.stringMatching(/^8 routes\[2\]\.rateLimit: policy "per-key" keys clients by x-api-key without route auth: .* refused 400/),
      expect.stringMatching(/^4 rateLimits\.per-ip\.trustedProxies: listen\.trustedProxies is empty/),
    ]);
  });
});

describe('stickyBy: ip', () => {
  const yaml = (a: string, b: string, trusted: string) => `listen: { host: 127.0.0.1, port: 0${trusted} }
upstreams: { a: { backends: [ { url: ${a} } ] }, b: { backends: [ { url: ${b} } ] } }
routes:
  - match: { path: / }
    split: [ { upstream: a, weight: 50 }, { upstream: b, weight: 50 } ]
    stickyBy: ip
`;

  it('follows X-Forwarded-For only from listen.trustedProxies', async () => {
    const a = await startBackend();
    const b = await startBackend();
    live.backends = [a, b];
    const spread = async () => {
      for (let i = 1; i <= 20; i++) expect((await raw(live.gateway!.url, '/x', `X-Forwarded-For: 198.51.100.${i}\r\n`)).status).toBe(200);
      const counts = [a.received.length, b.received.length];
      a.received.length = 0;
      b.received.length = 0;
      return counts;
    };
    live.gateway = await startGateway(yaml(a.url, b.url, ''));
    // untrusted: every request is the same client (the peer), so one side takes all
    expect((await spread()).sort()).toEqual([0, 20]);
    await live.gateway.close();
    live.gateway = await startGateway(yaml(a.url, b.url, ', trustedProxies: [127.0.0.1]'));
    const [onA, onB] = await spread();
    expect(onA).toBeGreaterThan(0);
    expect(onB).toBeGreaterThan(0);
  });
});
