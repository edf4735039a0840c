// Client-side limits of the HTTP/1 listener (listen.timeouts, limits.maxRequestBody without a
// Content-Length, Expect: 100-continue) and the problem+json answers to framing errors — all
// over raw sockets, so the bytes and the moment the gateway closes are what is asserted.

import { request } from 'node:http';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { parseRawResponse, rawConnect, rawExchange } from './helpers/raw-socket.js';
import { scrape } from './helpers/telemetry.js';
import { sleep } from './helpers/wait.js';
import { closed, openClient, startEchoBackend } from './helpers/websocket-backend.js';

const live = perTest();

const yaml = (
  backendUrl: string,
  timeouts = '',
  limits = '',
) => `listen: { host: 127.0.0.1, port: 0${timeouts ? `, timeouts: { ${timeouts} }` : ''} }
admin: { host: 127.0.0.1, port: 0 }
${limits ? `limits: { ${limits} }\n` : ''}upstreams:
  app:
    backends: [ { url: ${backendUrl} } ]
routes:
  - upstream: app
`;

const PROBLEM = 'application/problem+json';

describe('listen.timeouts on HTTP/1', () => {
  it('a slow upload (one byte a while, Content-Length) is answered 408 problem and closed after requestBodyIdle', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(yaml(app.url, 'requestBodyIdle: 300ms'));
    const connection = await rawConnect(live.gateway.url);
    connection.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx');
    const dripper = setInterval(() => connection.write('x'), 1_000);
    const { afterMs, text } = await connection.closed;
    clearInterval(dripper);
    const response = parseRawResponse(text);
    expect(response.status).toBe(408);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(JSON.parse(response.body)).toMatchObject({ type: 'urn:spillway:problem:request-timeout', status: 408 });
    expect(afterMs).toBeGreaterThanOrEqual(250);
    expect(afterMs).toBeLessThan(2_500);
    expect(app.received).toHaveLength(0);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_client_timeouts_total', { timeout: 'requestBodyIdle' })).toBe(1);
  });

  it('an upload that keeps trickling is cut by requestBody, also when it is already streaming to the backend', async () => {
    const app = await startBackend();
    live.backend = app;
    // replayBuffer 1kb: past the first 2 KiB the body streams to the backend.
    live.gateway = await startGateway(
      yaml(app.url, 'requestBodyIdle: 5s, requestBody: 800ms').replace(
        `backends: [ { url: ${app.url} } ]`,
        `backends: [ { url: ${app.url} } ]\n    failover: { replayBuffer: 1kb }`,
      ),
    );
    const connection = await rawConnect(live.gateway.url);
    connection.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'y'.repeat(2048)}`);
    const dripper = setInterval(() => connection.write('x'), 100);
    const { afterMs, text } = await connection.closed;
    clearInterval(dripper);
    expect(parseRawResponse(text).status).toBe(408);
    expect(afterMs).toBeGreaterThanOrEqual(700);
    expect(afterMs).toBeLessThan(3_000);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_client_timeouts_total', { timeout: 'requestBody' })).toBe(1);
  });

  it('headers sent too slowly are answered 408 problem after requestHeaders; a WebSocket handshake too', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(yaml(app.url, 'requestHeaders: 300ms'));
    for (const start of [
      'GET /x HTTP/1.1\r\nHost: a\r\n',
      'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n',
    ]) {
      const connection = await rawConnect(live.gateway.url);
      connection.write(start);
      const dripper = setInterval(() => connection.write('X-Slow: 1\r\n'), 100);
      const { afterMs, text } = await connection.closed;
      clearInterval(dripper);
      const response = parseRawResponse(text);
      expect(response.status).toBe(408);
      expect(response.headers['content-type']).toBe(PROBLEM);
      expect(afterMs).toBeLessThan(2_000);
    }
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_client_timeouts_total', { timeout: 'requestHeaders' })).toBe(2);
  });

  it('an idle keep-alive connection is closed after keepAliveIdle; a quiet streaming response and an open tunnel are not cut', async () => {
    const app = await startBackend(async (req, res) => {
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        await sleep(1_200);
        res.end('data: last\n\n');
        return;
      }
      res.end('ok');
    });
    const echo = await startEchoBackend();
    onTestFinished(() => echo.close());
    live.backend = app;
    live.gateway = await startGateway(
      `listen: { host: 127.0.0.1, port: 0, timeouts: { keepAliveIdle: 300ms, requestBodyIdle: 300ms, requestBody: 400ms } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  app: { backends: [ { url: ${app.url} } ] }
  ws: { backends: [ { url: ${echo.url} } ] }
routes:
  - match: { path: /ws }
    upstream: ws
  - upstream: app
`,
    );
    const idle = await rawConnect(live.gateway.url);
    idle.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
    const { afterMs } = await idle.closed;
    expect(idle.text()).toMatch(/^HTTP\/1\.1 200/);
    expect(afterMs).toBeGreaterThanOrEqual(250);
    expect(afterMs).toBeLessThan(2_000);

    const stream = await rawConnect(live.gateway.url);
    stream.write('GET /events HTTP/1.1\r\nHost: a\r\n\r\n');
    await sleep(1_000);
    expect(stream.socket.destroyed).toBe(false);
    await new Promise<void>((resolve) => stream.socket.on('data', () => stream.text().includes('data: last') && resolve()));
    expect(stream.text()).toContain('data: last');
    stream.socket.destroy();

    const socket = await openClient(`${live.gateway.url.replace('http', 'ws')}/ws`);
    await sleep(1_000);
    expect(socket.readyState).toBe(socket.OPEN);
    socket.close();
    await closed(socket);
  });

  it('a response without a request body waiting is never cut by the body timeouts', async () => {
    const app = await startBackend(async (_req, res) => {
      await sleep(900);
      res.end('slow but fine');
    });
    live.backend = app;
    live.gateway = await startGateway(yaml(app.url, 'requestBodyIdle: 200ms, requestBody: 300ms'));
    const response = await fetch(`${live.gateway.url}/slow`, { method: 'POST', body: 'small' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('slow but fine');
  });
});

describe('request body limits without a Content-Length', () => {
  it('a chunked body over maxRequestBody gets 413 and never reaches the backend whole', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(yaml(app.url, '', 'maxRequestBody: 1kb'));
    for (const size of [2 * 1024, 100 * 1024, 1000 * 1024]) {
      const status = await new Promise<number>((resolve, reject) => {
        const { hostname, port } = new URL(live.gateway!.url);
        const req = request({ host: hostname, port, method: 'POST', path: '/up', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        // No Content-Length: node sends it chunked.
        req.write('a'.repeat(size / 2));
        req.end('b'.repeat(size / 2));
      });
      expect(status).toBe(413);
    }
    expect(app.received.filter((r) => r.body.length > 1024)).toHaveLength(0);
    expect((await fetch(`${live.gateway.url}/ok`, { method: 'POST', body: 'x'.repeat(1000) })).status).toBe(200);
  });

  it('Expect: 100-continue with a Content-Length over the limit gets 413 at once, without 100 Continue', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(yaml(app.url, '', 'maxRequestBody: 1kb'));
    const text = await rawExchange(
      live.gateway.url,
      'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n',
    );
    expect(text).not.toContain('100 Continue');
    const response = parseRawResponse(text);
    expect(response.status).toBe(413);
    expect(response.headers['content-type']).toBe(PROBLEM);
    // Within the limit: invited, then forwarded.
    const small = await rawConnect(live.gateway.url);
    small.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    await new Promise<void>((resolve) => small.socket.once('data', () => resolve()));
    expect(small.text()).toMatch(/^HTTP\/1\.1 100 Continue/);
    small.write('hello');
    expect((await small.closed).text).toMatch(/HTTP\/1\.1 200/);
    expect(app.received.map((r) => r.body)).toEqual(['hello']);
  });
});

describe('framing errors', () => {
  it('unparsable requests get 400 and oversized headers 431, both application/problem+json, counted in metrics', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(yaml(app.url));
    const cases: Array<[string, number, string]> = [
      ['GARBAGE\r\n\r\n', 400, 'bad-request'],
      ['GET /x HTTP/1.1\r\nHost: a\r\nBad Header: y\r\n\r\n', 400, 'bad-request'],
      ['GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'bad-request'],
      [`GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers-too-large'],
    ];
    for (const [bytes, status, type] of cases) {
      const response = parseRawResponse(await rawExchange(live.gateway.url, bytes));
      expect(response.status).toBe(status);
      expect(response.headers['content-type']).toBe(PROBLEM);
      expect(JSON.parse(response.body)).toMatchObject({ type: `urn:spillway:problem:${type}`, status });
    }
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_client_protocol_errors_total', { reason: 'bad-request' })).toBe(3);
    expect(metrics.value('spillway_client_protocol_errors_total', { reason: 'headers-too-large' })).toBe(1);
    expect((await fetch(`${live.gateway.url}/still-up`)).status).toBe(200);
  });
});
