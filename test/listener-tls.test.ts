import { connect, type ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { WebSocketServer } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { startTlsBackend } from './helpers/tls-backend.js';
import { makeCa, makeServerCert, type TestCa, type TestServerCert } from './helpers/tls-certs.js';
import { closed, nextMessage, openClient, startEchoBackend } from './helpers/websocket-backend.js';
import { issuesIfAny } from './helpers/config.js';

let ca: TestCa;
let cert: TestServerCert;
let backend: TestBackend;
let gateway: TestGateway | undefined;
let agent: Agent;

beforeAll(async () => {
  ca = await makeCa();
  cert = await makeServerCert(ca);
  backend = await startBackend();
  agent = new Agent({ connect: { ca: ca.cert } });
});
afterAll(async () => {
  await closeAll(backend);
  await agent.close();
});
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  backend.received.length = 0;
});

const gatewayYaml = (listen: string, extra = '') => `listen: { host: 127.0.0.1, port: 0, ${listen} }
admin: { host: 127.0.0.1, port: 0 }
limits: { maxRequestBody: 1kb }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
${extra}routes:
  - match: { path: /v1 }
    upstream: app
`;

/** A listener with these keys and one route to a WebSocket echo backend. */
const echoYaml = (listen: string, url: string) => `listen: { host: 127.0.0.1, port: 0, ${listen} }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  rt:
    backends: [ { url: ${url} } ]
routes:
  - upstream: rt
`;

function h2Request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    let responseHeaders: Record<string, unknown> = {};
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve({ status, headers: responseHeaders, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
}

describe('TLS on the listener', () => {
  it('serves HTTPS with the given certificate and tells the backend the client used https', async () => {
    gateway = await startGateway(gatewayYaml(`tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }`));
    expect(gateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await undiciFetch(`${gateway.url}/v1/models`, { dispatcher: agent });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ url: '/v1/models' });
    expect(backend.received[0]!.headers['x-forwarded-proto']).toBe('https');
    // plain HTTP to the TLS port is not served
    await expect(fetch(`${gateway.url.replace('https:', 'http:')}/v1/models`)).rejects.toThrow();
    // a client that does not trust the CA refuses the certificate
    await expect(fetch(`${gateway.url}/v1/models`)).rejects.toThrow();
  });

  it('speaks HTTP/2 to clients that offer it, HTTP/1.1 to the rest, on one port', async () => {
    gateway = await startGateway(gatewayYaml(`tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }, http2: true`));
    const session = connect(gateway.url, { ca: ca.cert });
    try {
      const res = await h2Request(session, { ':method': 'POST', ':path': '/v1/chat?x=1', 'content-type': 'application/json' }, '{"a":1}');
      expect((session.socket as TLSSocket).alpnProtocol).toBe('h2');
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ url: '/v1/chat?x=1', method: 'POST' });
      const got = backend.received[0]!;
      expect(got.body).toBe('{"a":1}');
      expect(got.headers.host).toBe(`127.0.0.1:${backend.port}`);
      expect(got.headers['x-forwarded-host']).toBe(new URL(gateway.url).host);
      expect(Object.keys(got.headers).some((name) => name.startsWith(':'))).toBe(false);

      const get = await h2Request(session, { ':method': 'GET', ':path': '/v1/models' });
      expect(get.status).toBe(200);
      expect(backend.received[1]!.method).toBe('GET');
      expect(backend.received[1]!.headers['content-length']).toBeUndefined();
      expect(backend.received[1]!.headers['transfer-encoding']).toBeUndefined();

      // gateway-made problems over HTTP/2 (no connection-specific headers allowed there)
      const missing = await h2Request(session, { ':method': 'GET', ':path': '/nowhere' });
      expect(missing.status).toBe(404);
      expect(missing.headers['content-type']).toBe('application/problem+json');
      const tooLarge = await h2Request(session, { ':method': 'POST', ':path': '/v1/chat', 'content-length': '2000' }, 'x'.repeat(2000));
      expect(tooLarge.status).toBe(413);
    } finally {
      session.close();
    }

    // an HTTP/1.1-only client on the same port
    const http1 = await new Promise<{ status: number; alpn: string | false | null }>((resolve, reject) => {
      const req = httpsRequest(`${gateway!.url}/v1/one`, { ca: ca.cert, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, alpn: (res.socket as TLSSocket).alpnProtocol }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(http1.status).toBe(200);
  });

  it('proxies WebSocket over the HTTPS listener (wss://)', async () => {
    const echo = await startEchoBackend();
    try {
      gateway = await startGateway(echoYaml(`tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }`, echo.url));
      const client = await openClient(`${gateway.url.replace('https:', 'wss:')}/rt`, { ca: ca.cert });
      client.send('who');
      expect(await nextMessage(client)).toBe('echo /rt');
      expect(echo.handshakes[0]!.headers['x-forwarded-proto']).toBe('https');
      client.close(1000, 'ok');
      expect(await closed(client)).toEqual({ code: 1000, reason: 'ok' });
    } finally {
      await echo.close();
    }
  });

  it('WebSocket clients (HTTP/1.1 handshake) work on the HTTP/2 listener too', async () => {
    const echo = await startEchoBackend();
    try {
      gateway = await startGateway(echoYaml(`http2: true, tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }`, echo.url));
      const client = await openClient(`${gateway.url.replace('https:', 'wss:')}/rt`, { ca: ca.cert });
      client.send('who');
      expect(await nextMessage(client)).toBe('echo /rt');
      client.close(1000, 'ok');
      expect(await closed(client)).toEqual({ code: 1000, reason: 'ok' });
    } finally {
      await echo.close();
    }
  });

  it('proxies WebSocket to a TLS backend (wss upstream) with the configured CA', async () => {
    const tlsBackend = await startTlsBackend(cert);
    const wss = new WebSocketServer({ server: tlsBackend.server });
    wss.on('connection', (socket, req) => socket.on('message', (data) => socket.send(`${req.url} ${data.toString()}`)));
    try {
      gateway = await startGateway(`upstreams:
  rt:
    tls: { ca: ${ca.certFile} }
    backends: [ { url: ${tlsBackend.url}/realtime } ]
routes:
  - upstream: rt
`);
      const client = await openClient(`${gateway.url.replace('http:', 'ws:')}/v1?model=x`);
      client.send('hi');
      expect(await nextMessage(client)).toBe('/realtime/v1?model=x hi');
      client.close();
      await closed(client);
    } finally {
      for (const socket of wss.clients) socket.terminate();
      wss.close();
      await tlsBackend.close();
    }
  });

  it('a WebSocket to a backend with an untrusted certificate gets the TLS problem', async () => {
    const other = await makeCa('untrusted');
    const tlsBackend = await startTlsBackend(await makeServerCert(other));
    try {
      gateway = await startGateway(
        `upstreams:\n  rt:\n    tls: { ca: ${ca.certFile} }\n    backends: [ { url: ${tlsBackend.url} } ]\nroutes:\n  - upstream: rt\n`,
      );
      const refusal = (await openClient(`${gateway.url.replace('http:', 'ws:')}/x`).catch((error: unknown) => error)) as {
        status: number;
        body: string;
      };
      expect(refusal.status).toBe(502);
      expect(JSON.parse(refusal.body)).toMatchObject({ type: 'urn:spillway:problem:upstream-tls-error' });
      expect(gateway.logs.events('backend.tls_error')).toHaveLength(1);
    } finally {
      await tlsBackend.close();
    }
  });
});

describe('listener TLS config checks', () => {
  const withListen = (listen: string) =>
    `listen: { port: 0, ${listen} }\nupstreams:\n  app:\n    backends: [ { url: http://127.0.0.1:1 } ]\nroutes:\n  - upstream: app\n`;

  it('http2 needs tls', () => {
    expect(issuesIfAny(withListen('http2: true'))).toEqual([
      expect.objectContaining({ line: 1, path: 'listen.http2', message: 'http2 needs listen.tls (clients negotiate HTTP/2 over TLS)' }),
    ]);
  });

  it('names missing files and a key that does not belong to the certificate', async () => {
    const missing = issuesIfAny(withListen(`tls: { cert: /nope/cert.pem, key: ${cert.keyFile} }`));
    expect(missing).toEqual([
      expect.objectContaining({ path: 'listen.tls.cert', message: 'cannot read "/nope/cert.pem": file not found' }),
    ]);
    const swapped = issuesIfAny(withListen(`tls: { cert: ${cert.certFile}, key: ${cert.certFile} }`));
    expect(swapped[0]).toMatchObject({ path: 'listen.tls.key' });
    expect(swapped[0]!.message).toContain('holds no PEM private key');
    const stranger = await makeServerCert(ca);
    const mismatch = issuesIfAny(withListen(`tls: { cert: ${cert.certFile}, key: ${stranger.keyFile} }`));
    expect(mismatch).toEqual([
      expect.objectContaining({ path: 'listen.tls.key', message: expect.stringContaining('does not belong to the certificate') }),
    ]);
  });
});
