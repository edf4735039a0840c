import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { closeAll, startBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { httpRequest } from './helpers/http.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

function single(url: string, upstreamExtra = '', routeExtra = '', path = '/'): string {
  return `upstreams:
  app:
    backends: [ { url: ${url} } ]
${upstreamExtra}
routes:
  - match: { path: ${path} }
    upstream: app
${routeExtra}
`;
}

/** Sends raw bytes and returns the raw response text (for what fetch would refuse to send). */
function rawRequest(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes));
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve(data);
    });
  });
}

describe('forwarding', () => {
  it('keeps path and query, strips hop-by-hop headers, sets X-Forwarded-*', async () => {
    const app = await startBackend((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        connection: 'keep-alive, x-internal',
        'x-internal': 'secret',
        'keep-alive': 'timeout=5',
        'x-ok': '1',
      });
      res.end('ok');
    });
    live.backends = [app];
    live.gateway = await startGateway(single(app.url));
    const res = await httpRequest(`${live.gateway.url}/a/b%20c?x=1&y=%2F`, {
      headers: { connection: 'keep-alive, x-drop-me', 'x-drop-me': '1', 'x-keep': '2', 'x-forwarded-for': '203.0.113.9', te: 'trailers' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-ok']).toBe('1');
    expect(res.headers['x-internal']).toBeUndefined();
    const seen = app.received[0]!;
    expect(seen.url).toBe('/a/b%20c?x=1&y=%2F');
    expect(seen.headers['x-keep']).toBe('2');
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    // the peer is not in listen.trustedProxies: its X-Forwarded-For is replaced, not appended to
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(live.gateway.url).host);
    expect(seen.headers.host).toBe(new URL(app.url).host);
  });

  it('hostHeader: preserve keeps the client Host; a literal value is sent as is', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, '    hostHeader: preserve'));
    await httpRequest(`${live.gateway.url}/x`, { headers: { host: 'shop.example' } });
    expect(app.received[0]!.headers.host).toBe('shop.example');
    await closeAll(live.gateway);
    live.gateway = await startGateway(single(app.url, '    hostHeader: legacy.internal'));
    await fetch(`${live.gateway.url}/x`);
    expect(app.received[1]!.headers.host).toBe('legacy.internal');
  });

  it('strips or replaces a route prefix, and prepends the backend URL path', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(`${app.url}/base`, '', '    rewrite: { stripPrefix: /api, addPrefix: /v2 }', '/api'));
    await fetch(`${live.gateway.url}/api/orders/7?full=1`);
    await fetch(`${live.gateway.url}/api`);
    expect(app.received.map((r) => r.url)).toEqual(['/base/v2/orders/7?full=1', '/base/v2']);
    expect((await fetch(`${live.gateway.url}/apix`)).status).toBe(404);
  });

  it('unknown route → 404 problem+json', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, '', '', '/only'));
    const res = await fetch(`${live.gateway.url}/elsewhere`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ type: 'urn:spillway:problem:route-not-found', status: 404 });
  });

  it('methods restrict a route', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(
      `upstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - match: { path: /, methods: [get] }\n    upstream: app\n`,
    );
    expect((await fetch(`${live.gateway.url}/x`)).status).toBe(200);
    expect((await fetch(`${live.gateway.url}/x`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('streaming', () => {
  it('SSE: the client receives the first event before the backend sends the last', async () => {
    let releaseLast!: () => void;
    const lastMayGo = new Promise<void>((resolve) => (releaseLast = resolve));
    const app = await startBackend(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      await lastMayGo;
      res.end('data: last\n\n');
    });
    live.backends = [app];
    live.gateway = await startGateway(single(app.url));
    const res = await fetch(`${live.gateway.url}/v1/stream`);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe('data: first\n\n');
    releaseLast();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
    expect(rest).toBe('data: last\n\n');
  });

  it('streams a large response without changing a byte', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 'abcdefghij');
    const app = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    });
    live.backends = [app];
    live.gateway = await startGateway(single(app.url));
    const res = await fetch(`${live.gateway.url}/big`);
    expect(res.headers.get('content-length')).toBe(String(big.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(big)).toBe(true);
  });
});

describe('timeouts and failures', () => {
  it('headers timeout → 504 upstream-headers-timeout', async () => {
    const app = await startBackend(() => new Promise(() => undefined));
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, '    timeouts: { headers: 200ms }'));
    const res = await fetch(`${live.gateway.url}/slow`);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ type: 'urn:spillway:problem:upstream-headers-timeout' });
  });

  it('idle body timeout cuts the client response instead of hanging', async () => {
    const app = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    live.backends = [app];
    live.gateway = await startGateway(single(app.url, '    timeouts: { idle: 200ms }'));
    const res = await fetch(`${live.gateway.url}/stall`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it('connection refused → 502 upstream-unreachable, and the gateway keeps serving', async () => {
    const app = await startBackend();
    const url = app.url;
    await app.close();
    live.gateway = await startGateway(single(url));
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ type: 'urn:spillway:problem:upstream-unreachable' });
    expect((await fetch(`${live.gateway.adminUrl}/healthz`)).status).toBe(200);
  });
});

describe('bad requests', () => {
  it('a body over limits.maxRequestBody → 413 problem, by Content-Length or while streaming', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(`limits: { maxRequestBody: 2kb }\n${single(app.url, '    failover: { replayBuffer: 1kb }')}`);
    const declared = await fetch(`${live.gateway.url}/up`, { method: 'POST', body: 'x'.repeat(4096) });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ type: 'urn:spillway:problem:payload-too-large' });
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(1024));
        controller.close();
      },
    });
    const chunked = await fetch(`${live.gateway.url}/up`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await fetch(`${live.gateway.url}/ok`)).status).toBe(200);
  });

  it('malformed requests get a 4xx and the process keeps serving', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(single(app.url));
    expect(await rawRequest(live.gateway.url, 'GET /x HTTP/1.1\r\nHost: a\r\nBad Header: y\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await rawRequest(live.gateway.url, `GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431/,
    );
    expect(
      await rawRequest(live.gateway.url, 'GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
    ).toMatch(/^HTTP\/1\.1 400/);
    expect(await rawRequest(live.gateway.url, 'GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${live.gateway.url}/still-up`)).status).toBe(200);
  });
});
