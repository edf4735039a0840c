import { connect } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { startJsonBackend } from './helpers/aggregate.js';
import { startGateway } from './helpers/gateway.js';
import { makeCa, makeServerCert } from './helpers/tls-certs.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

describe('aggregate over an HTTP/2 listener', () => {
  it('answers the merged body and a partial marker; parts see the :authority as x-forwarded-host', async () => {
    const ca = await makeCa();
    const cert = await makeServerCert(ca);
    const users = await startJsonBackend(() => ({ body: { id: 1 } }), 'users');
    const broken = await startJsonBackend(() => ({ status: 500 }), 'broken');
    live.backends = [users, broken];
    live.gateway =
      await startGateway(`listen: { host: 127.0.0.1, port: 0, tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }, http2: true }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { backends: [{ url: ${users.url} }] }
  broken: { backends: [{ url: ${broken.url} }] }
routes:
  - match: { path: /dash/:id }
    aggregate:
      parts:
        profile: { upstream: users, path: "/users/{id}", required: true }
        recs: { upstream: broken, path: /recs }
`);
    const session = connect(live.gateway.url, { ca: ca.cert });
    try {
      const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'GET', ':path': '/dash/7', authorization: 'Bearer x' });
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
        stream.end();
      });
      expect(res.status).toBe(200);
      expect(res.headers['spillway-partial']).toBe('recs');
      expect(JSON.parse(res.body)).toMatchObject({ profile: { id: 1 }, recs: null });
      const got = users.received[0]!;
      expect(got.url).toBe('/users/7');
      expect(got.headers.authorization).toBe('Bearer x');
      expect(got.headers['x-forwarded-host']).toBe(new URL(live.gateway.url).host);
      expect(got.headers['x-forwarded-proto']).toBe('https');
    } finally {
      session.close();
    }
  });
});
