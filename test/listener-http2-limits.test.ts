// Client-side limits of the HTTP/2 listener, driven with raw node:http2 sessions (HEADERS,
// RST_STREAM, GOAWAY are real frames): stream limits, rapid reset, cancellation reaching the
// backend, body limits and timeouts per stream — and the listener's TLS profile.

import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { parseConfigText } from '../src/config/load.js';
import { floodConnection, rapidResetBytes } from './helpers/h2-frames.js';
import { perTest } from './helpers/per-test.js';
import { scrape } from './helpers/telemetry.js';
import { makeCa, makeServerCert, type TestCa, type TestServerCert } from './helpers/tls-certs.js';
import { sleep, waitUntil } from './helpers/wait.js';

let ca: TestCa;
let cert: TestServerCert;
const sessions: ClientHttp2Session[] = [];
const live = perTest(() => {
  for (const session of sessions.splice(0)) session.destroy();
});

beforeAll(async () => {
  ca = await makeCa();
  cert = await makeServerCert(ca);
});
afterAll(() => undefined);

const h2Yaml = (
  backendUrl: string,
  listen = '',
  upstream = '',
  limits = '',
) => `listen: { host: 127.0.0.1, port: 0, http2: true, tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }${listen} }
admin: { host: 127.0.0.1, port: 0 }
${limits ? `limits: { ${limits} }\n` : ''}upstreams:
  app:
    backends: [ { url: ${backendUrl} } ]
${upstream}routes:
  - upstream: app
`;

async function open(url: string): Promise<ClientHttp2Session> {
  const session = connect(url, { ca: ca.cert });
  sessions.push(session);
  session.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  return session;
}

function answer(stream: ClientHttp2Stream): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: Record<string, unknown> = {};
    let body = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ status, headers, body }));
    stream.on('error', reject);
  });
}

/** A backend that holds every request until released, counting requests that are open now. */
async function heldBackend() {
  const held: Array<{ req: IncomingMessage; release: () => void }> = [];
  let open = 0;
  let peak = 0;
  const backend = await startBackend();
  backend.server.removeAllListeners('request');
  backend.server.on('request', (req, res) => {
    open++;
    peak = Math.max(peak, open);
    req.resume();
    res.on('close', () => open--);
    held.push({ req, release: () => res.end('released') });
  });
  return {
    backend,
    held,
    open: () => open,
    peak: () => peak,
    releaseAll: () => {
      for (const one of held) one.release();
    },
  };
}

describe('HTTP/2 stream limits', () => {
  it('advertises maxConcurrentStreams 100 and a header list limit of limits.maxHeaderSize by default', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url));
    const session = await open(live.gateway.url);
    expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
    expect(session.remoteSettings.maxHeaderListSize).toBe(16 * 1024);
  });

  it('one connection never has more than maxConcurrentStreams backend requests at once', async () => {
    const held = await heldBackend();
    live.backend = held.backend;
    live.gateway = await startGateway(h2Yaml(held.backend.url, ', http2Limits: { maxConcurrentStreams: 5 }'));
    const session = await open(live.gateway.url);
    expect(session.remoteSettings.maxConcurrentStreams).toBe(5);
    const outcomes = Array.from({ length: 20 }, () =>
      answer(session.request({ ':path': '/x' }, { endStream: true })).then(
        (response) => response.status,
        () => 'refused',
      ),
    );
    await waitUntil(() => held.open() >= 5, { timeout: 5_000 });
    await sleep(300);
    expect(held.peak()).toBe(5);
    // Answer whatever arrives until every stream is done: never more than 5 at once.
    const releaser = setInterval(() => held.releaseAll(), 50);
    const results = await Promise.all(outcomes).finally(() => clearInterval(releaser));
    expect(results.filter((r) => r === 200).length).toBeGreaterThanOrEqual(5);
    expect(held.peak()).toBe(5);
  });

  it('rapid reset: HEADERS + RST_STREAM floods get GOAWAY (ENHANCE_YOUR_CALM), no backend request, and the gateway keeps serving', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url));
    const port = Number(new URL(live.gateway.url).port);
    // Raw frames: 2,000 HEADERS + RST_STREAM pairs in one write, as an attacker sends them.
    expect(await floodConnection(port, ca.cert, rapidResetBytes(2_000))).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    await sleep(200);
    expect(app.received).toHaveLength(0);
    const fresh = await open(live.gateway.url);
    const response = await answer(fresh.request({ ':path': '/normal' }, { endStream: true }));
    expect(response.status).toBe(200);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_client_protocol_errors_total', { reason: 'http2-rapid-reset' })).toBeGreaterThanOrEqual(1);
  });
});

describe('HTTP/2 cancellation reaches the backend', () => {
  const concurrency = '    concurrency: { perBackend: 10, queue: 0 }\n';

  it('a cancelled stream aborts its backend request and frees the concurrency slot', async () => {
    const held = await heldBackend();
    live.backend = held.backend;
    live.gateway = await startGateway(h2Yaml(held.backend.url, '', concurrency));
    const session = await open(live.gateway.url);
    const streams = Array.from({ length: 10 }, (_, i) => session.request({ ':path': `/slow/${i}` }, { endStream: true }));
    for (const stream of streams) stream.on('error', () => undefined);
    await waitUntil(() => held.open() === 10, { timeout: 5_000 });
    for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
    const started = performance.now();
    await waitUntil(() => held.open() === 0, { timeout: 2_500 });
    expect(performance.now() - started).toBeLessThan(2_500);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_backend_in_flight', { upstream: 'app', backend: held.backend.url })).toBe(0);
    // All 10 slots are free again: 10 new requests are all admitted.
    const again = Array.from({ length: 10 }, (_, i) => session.request({ ':path': `/again/${i}` }, { endStream: true }));
    const answers = again.map((stream) => answer(stream));
    await waitUntil(() => held.open() === 10, { timeout: 5_000 });
    held.releaseAll();
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual(Array(10).fill(200));
  });

  it('a closed connection aborts every backend request it had open', async () => {
    const held = await heldBackend();
    live.backend = held.backend;
    live.gateway = await startGateway(h2Yaml(held.backend.url, '', concurrency));
    const session = await open(live.gateway.url);
    for (let i = 0; i < 10; i++) session.request({ ':path': `/slow/${i}` }, { endStream: true }).on('error', () => undefined);
    await waitUntil(() => held.open() === 10, { timeout: 5_000 });
    session.destroy();
    await waitUntil(() => held.open() === 0, { timeout: 2_500 });
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_backend_in_flight', { upstream: 'app', backend: held.backend.url })).toBe(0);
  });
});

describe('HTTP/2 request bodies', () => {
  it('a body without content-length over maxRequestBody gets 413 and never reaches the backend whole', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url, '', '', 'maxRequestBody: 1kb'));
    const session = await open(live.gateway.url);
    for (const size of [2 * 1024, 100 * 1024]) {
      const stream = session.request({ ':path': '/up', ':method': 'POST' });
      stream.on('error', () => undefined);
      const response = answer(stream).catch(() => ({ status: -1, headers: {} as Record<string, unknown>, body: '' }));
      stream.write('a'.repeat(size / 2));
      stream.end('b'.repeat(size / 2));
      const { status, headers } = await response;
      expect(status).toBe(413);
      expect(headers['content-type']).toBe('application/problem+json');
    }
    expect(app.received.filter((r) => r.body.length > 1024)).toHaveLength(0);
  });

  it('a stream whose body stalls is answered 408 after requestBodyIdle; the connection keeps serving', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url, ', timeouts: { requestBodyIdle: 300ms }'));
    const session = await open(live.gateway.url);
    const stream = session.request({ ':path': '/up', ':method': 'POST' });
    stream.on('error', () => undefined);
    const started = performance.now();
    const response = answer(stream);
    stream.write('first');
    const { status, headers } = await response;
    expect(status).toBe(408);
    expect(headers['content-type']).toBe('application/problem+json');
    expect(performance.now() - started).toBeLessThan(2_000);
    const next = await answer(session.request({ ':path': '/next' }, { endStream: true }));
    expect(next.status).toBe(200);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_client_timeouts_total', { timeout: 'requestBodyIdle' })).toBe(1);
  });

  it('an idle connection is closed after keepAliveIdle, one with a quiet open stream is not', async () => {
    const app = await startBackend(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      await sleep(1_000);
      res.end('data: last\n\n');
    });
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url, ', timeouts: { keepAliveIdle: 300ms }'));
    const idle = await open(live.gateway.url);
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    await Promise.race([idleClosed, sleep(2_000).then(() => Promise.reject(new Error('idle session still open')))]);

    const busy = await open(live.gateway.url);
    const events = await answer(busy.request({ ':path': '/events' }, { endStream: true }));
    expect(events.body).toContain('data: last');
  });
});

describe('TLS profile of the listener', () => {
  const handshake = (url: string, options: { ciphers?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }) =>
    new Promise<string>((resolve) => {
      const { hostname, port } = new URL(url);
      const socket = tlsConnect({ host: hostname, port: Number(port), ca: ca.cert, servername: 'localhost', ...options }, () => {
        const cipher = socket.getCipher().name;
        socket.destroy();
        resolve(cipher);
      });
      socket.on('error', (error: Error & { code?: string }) => resolve(`refused: ${error.code ?? error.message}`));
    });

  it('refuses CBC/SHA-1 and non-forward-secret suites by default (Mozilla intermediate), accepts TLS 1.2 ECDHE-GCM and TLS 1.3', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url));
    expect(await handshake(live.gateway.url, { ciphers: 'AES128-SHA', maxVersion: 'TLSv1.2' })).toMatch(/^refused/);
    // The test certificate is ECDSA: these are the suites a client could otherwise get.
    expect(await handshake(live.gateway.url, { ciphers: 'ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2' })).toMatch(/^refused/);
    expect(await handshake(live.gateway.url, { ciphers: 'ECDHE-ECDSA-AES256-SHA384', maxVersion: 'TLSv1.2' })).toMatch(/^refused/);
    expect(await handshake(live.gateway.url, { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' })).toBe(
      'ECDHE-ECDSA-AES128-GCM-SHA256',
    );
    expect(await handshake(live.gateway.url, {})).toMatch(/^TLS_/);
  });

  it('tls.minVersion and tls.ciphers come from the config', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url).replace(`key: ${cert.keyFile} }`, `key: ${cert.keyFile}, minVersion: TLSv1.3 }`));
    expect(await handshake(live.gateway.url, { maxVersion: 'TLSv1.2' })).toMatch(/^refused/);
    expect(await handshake(live.gateway.url, {})).toMatch(/^TLS_/);
  });
});

describe('spillway check on a config written before these limits', () => {
  it('warns where the TLS profile, the HTTP/2 limits or the body timeout change what the file does', () => {
    const before = `listen: { host: 127.0.0.1, port: 0, http2: true, tls: { cert: ${cert.certFile}, key: ${cert.keyFile} } }
limits: { maxRequestBody: 2gb }
upstreams:
  app:
    backends: [ { url: http://127.0.0.1:1 } ]
routes:
  - upstream: app
`;
    const { warnings } = parseConfigText(before, 'old.yaml', {});
    expect(warnings.map((w) => [w.path, w.line])).toEqual([
      ['listen.tls', 1],
      ['listen.http2', 1],
      ['limits.maxRequestBody', 2],
    ]);
    expect(warnings[0]!.message).toContain('intermediate');
    expect(warnings[2]!.message).toContain('listen.timeouts.requestBody');
    const explicit = before
      .replace(`key: ${cert.keyFile} }`, `key: ${cert.keyFile}, minVersion: TLSv1.2 }`)
      .replace('http2: true,', 'http2: true, http2Limits: { maxConcurrentStreams: 100 }, timeouts: { requestBody: 1h },');
    expect(parseConfigText(explicit, 'new.yaml', {}).warnings).toEqual([]);
  });
});

describe('HTTP/1.1 on the HTTP/2 listener', () => {
  /** Raw HTTP/1.1 over TLS (ALPN http/1.1): what came back and when the gateway closed. */
  const http1OverTls = (url: string, start: string, drip = '') =>
    new Promise<{ text: string; afterMs: number }>((resolve) => {
      const { port } = new URL(url);
      const began = performance.now();
      let text = '';
      let timer: NodeJS.Timeout | undefined;
      const socket = tlsConnect(
        { host: '127.0.0.1', port: Number(port), ca: ca.cert, servername: 'localhost', ALPNProtocols: ['http/1.1'] },
        () => {
          socket.write(start);
          if (drip) timer = setInterval(() => socket.write(drip), 100);
        },
      );
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ text, afterMs: performance.now() - began });
      });
    });

  it('gets the same problem+json framing errors and header timeout', async () => {
    const app = await startBackend();
    live.backend = app;
    live.gateway = await startGateway(h2Yaml(app.url, ', timeouts: { requestHeaders: 300ms }'));
    const garbage = await http1OverTls(live.gateway.url, 'GARBAGE\r\n\r\n');
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400/);
    expect(garbage.text).toContain('application/problem+json');
    const slow = await http1OverTls(live.gateway.url, 'GET /x HTTP/1.1\r\nHost: a\r\n', 'X-Slow: 1\r\n');
    expect(slow.text).toMatch(/^HTTP\/1\.1 408/);
    expect(slow.text).toContain('urn:spillway:problem:request-timeout');
    expect(slow.afterMs).toBeLessThan(2_000);
  });
});
