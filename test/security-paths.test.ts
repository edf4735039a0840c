// Routing bypass attempts over raw sockets (node:net): a spelling of a path must never reach a
// backend that would serve a path a deny rule covers.

import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

function config(url: string, paths = ''): string {
  return `${paths}
upstreams:
  app:
    backends: [ { url: ${url} } ]
routes:
  - match: { path: /admin }
    respond: { status: 403, body: { title: "admin is internal" } }
  - match: { path: /api/admin }
    respond: { status: 403, body: { title: "api admin is internal" } }
  - match: { path: /api }
    upstream: app
    rewrite: { stripPrefix: /api }
  - match: { path: / }
    upstream: app
`;
}

interface RawAnswer {
  status: number;
  type: string | undefined;
  body: string;
}

/** Sends one request line as written (no client library rewrites it) and reads the answer. */
function raw(gatewayUrl: string, target: string, extraHeaders = ''): Promise<RawAnswer> {
  const { port } = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: a\r\n${extraHeaders}Connection: close\r\n\r\n`),
    );
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const type = /^content-type: *([^\r]+)/im.exec(data)?.[1];
      resolve({ status, type, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${target}`)));
  });
}

async function start(paths = ''): Promise<{ url: string; app: TestBackend }> {
  const app = await startBackend();
  live.backends = [app];
  live.gateway = await startGateway(config(app.url, paths));
  return { url: live.gateway.url, app };
}

function expectProblem(answer: RawAnswer, status: number, type: string): void {
  expect(answer.status).toBe(status);
  expect(answer.type).toBe('application/problem+json');
  expect((JSON.parse(answer.body) as { type: string }).type).toBe(`urn:spillway:problem:${type}`);
}

describe('request target: fragments', () => {
  it('GET /admin#x is refused 400 ambiguous-path, never forwarded', async () => {
    const { url, app } = await start();
    for (const target of ['/admin#x', '/api/admin#', '/x#/../admin', '/ok?q=1#frag']) {
      expectProblem(await raw(url, target), 400, 'ambiguous-path');
    }
    expect(app.received).toHaveLength(0);
  });
});

describe('request target: ";" path parameters', () => {
  it('default (match-stripped): /api/admin;x and /api/admin;/x meet the deny rule', async () => {
    const { url, app } = await start();
    for (const target of ['/api/admin;x', '/api/admin;/x', '/api/admin;jsessionid=1/y', '/api;v=1/admin', '/admin;x']) {
      const answer = await raw(url, target);
      expect(answer.status, target).toBe(403);
    }
    expect(app.received).toHaveLength(0);
  });

  it('default: ";" elsewhere is forwarded as sent; "..;" and ";"-only segments are refused', async () => {
    const { url, app } = await start();
    expect((await raw(url, '/api/orders;v=2/7')).status).toBe(200);
    expect(app.received.at(-1)!.url).toBe('/orders;v=2/7');
    expect((await raw(url, '/files/a;b')).status).toBe(200);
    expect(app.received.at(-1)!.url).toBe('/files/a;b');
    for (const target of ['/api/..;/admin', '/x/..;x/admin', '/api/;x/../admin', '/x/.;/admin']) {
      expectProblem(await raw(url, target), 400, 'ambiguous-path');
    }
    expect(app.received).toHaveLength(2);
  });

  it('semicolons: refuse answers any ";" with 400; keep treats it as an ordinary character', async () => {
    let { url, app } = await start('paths: { semicolons: refuse }');
    expectProblem(await raw(url, '/api/orders;v=2'), 400, 'ambiguous-path');
    expect(app.received).toHaveLength(0);
    await live.gateway!.close();
    live.gateway = undefined;
    ({ url, app } = await start('paths: { semicolons: keep }'));
    expect((await raw(url, '/api/admin;x')).status).toBe(200);
    expect(app.received[0]!.url).toBe('/admin;x');
  });
});

describe('request target: case and trailing characters', () => {
  it('segments ending in "." or whitespace are refused by default', async () => {
    const { url, app } = await start();
    for (const target of ['/api/admin.', '/api/admin%20', '/api/admin%09', '/api/admin%2e', '/api/admin./x', '/api/admin.;x']) {
      expectProblem(await raw(url, target), 400, 'ambiguous-path');
    }
    expect(app.received).toHaveLength(0);
    // inside a segment they are ordinary
    expect((await raw(url, '/api/a.b/c%20d')).status).toBe(200);
    expect(app.received[0]!.url).toBe('/a.b/c%20d');
  });

  it('trailingDotSpace: keep forwards them', async () => {
    const { url, app } = await start('paths: { trailingDotSpace: keep }');
    expect((await raw(url, '/api/admin.')).status).toBe(200);
    expect(app.received[0]!.url).toBe('/admin.');
  });

  it('caseInsensitive: /api/ADMIN meets the deny rule; other paths keep their case', async () => {
    let { url, app } = await start();
    expect((await raw(url, '/api/ADMIN')).status).toBe(200); // case-sensitive by default
    expect(app.received[0]!.url).toBe('/ADMIN');
    await live.gateway!.close();
    live.gateway = undefined;
    ({ url, app } = await start('paths: { caseInsensitive: true }'));
    for (const target of ['/api/ADMIN', '/API/Admin', '/Admin/x', '/%41pi/%61DMIN'])
      expect((await raw(url, target)).status, target).toBe(403);
    expect((await raw(url, '/API/Orders')).status).toBe(200);
    expect(app.received[0]!.url).toBe('/Orders');
  });
});

describe('request target: absolute form', () => {
  it('goes through the same refusal policy as origin-form (no URL parser resolves it first)', async () => {
    const { url, app } = await start();
    expectProblem(await raw(url, 'http://a/api/%2e%2e/internal/z'), 400, 'ambiguous-path');
    expectProblem(await raw(url, 'http://a/api/admin#x'), 400, 'ambiguous-path');
    expectProblem(await raw(url, 'http://a/api/admin.'), 400, 'ambiguous-path');
    expect((await raw(url, 'http://a/api/admin;x')).status).toBe(403);
    expect((await raw(url, 'HTTP://a/api/./admin')).status).toBe(403);
    expect(app.received).toHaveLength(0);
    expect((await raw(url, 'http://a:8080/api/orders?x=%2F')).status).toBe(200);
    expect((await raw(url, 'http://a')).status).toBe(200);
    expect(app.received.map((r) => r.url)).toEqual(['/orders?x=%2F', '/']);
    expectProblem(await raw(url, 'ftp://a/x'), 400, 'bad-request');
  });
});
