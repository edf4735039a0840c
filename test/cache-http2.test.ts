// The cache over an HTTP/2 listener: :authority stands for Host in the key and the entry.

import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { makeCa, makeServerCert, type TestCa, type TestServerCert } from './helpers/tls-certs.js';

let ca: TestCa;
let cert: TestServerCert;
let backend: TestBackend;
let gateway: TestGateway;
beforeAll(async () => {
  ca = await makeCa();
  cert = await makeServerCert(ca);
  backend = await startBackend((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
    res.end(`at ${req.url}`);
  });
  gateway = await startGateway(`listen: { host: 127.0.0.1, port: 0, http2: true, tls: { cert: ${cert.certFile}, key: ${cert.keyFile} } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  api: { backends: [ { url: ${backend.url} } ] }
routes:
  - { name: cached, upstream: api, cache: {} }
`);
});
afterAll(async () => {
  await closeAll(gateway, backend);
});

function get(session: ClientHttp2Session, path: string): Promise<{ status: number; cacheStatus: string; age: string; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ':path': path });
    let head: Record<string, unknown> = {};
    let body = '';
    stream.on('response', (h) => (head = h));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () =>
      resolve({ status: Number(head[':status']), cacheStatus: String(head['cache-status']), age: String(head.age), body }),
    );
    stream.on('error', reject);
    stream.end();
  });
}

describe('cache over HTTP/2', () => {
  it('stores and answers hits (with Age and Cache-Status) for HTTP/2 clients', async () => {
    const session = connect(gateway.url, { ca: ca.cert });
    try {
      const miss = await get(session, '/h2');
      expect(miss.cacheStatus).toBe('spillway; fwd=uri-miss; fwd-status=200; stored');
      const hit = await get(session, '/h2');
      expect(hit.status).toBe(200);
      expect(hit.body).toBe('at /h2');
      expect(hit.cacheStatus).toMatch(/^spillway; hit; ttl=\d+$/);
      expect(Number(hit.age)).toBeGreaterThanOrEqual(0);
      expect(backend.received.filter((r) => r.url === '/h2').length).toBe(1);
    } finally {
      session.close();
    }
  });
});
