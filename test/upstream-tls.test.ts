import { writeFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { closeAll } from './helpers/backend.js';
import { startGateway, writeTempConfig, type TestGateway } from './helpers/gateway.js';
import { startTlsBackend, type TlsBackend } from './helpers/tls-backend.js';
import { makeCa, makeServerCert, type TestCa, type TestServerCert } from './helpers/tls-certs.js';
import { issuesIfAny } from './helpers/config.js';

let ca: TestCa;
let otherCa: TestCa;
let cert: TestServerCert;
let backend: TlsBackend;
let gateway: TestGateway | undefined;

beforeAll(async () => {
  ca = await makeCa();
  otherCa = await makeCa('some other CA');
  cert = await makeServerCert(ca, ['eastus.test']);
  backend = await startTlsBackend(cert);
});
afterAll(() => closeAll(backend));
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  backend.received.length = 0;
});

const upstreamYaml = (tls: string, url = backend.url) => `upstreams:
  secure:
    backends:
      - url: ${url}
    ${tls}
routes:
  - upstream: secure
`;

describe('HTTPS backends', () => {
  it('verifies the backend certificate against tls.ca and keeps one TLS connection for many requests', async () => {
    gateway = await startGateway(upstreamYaml(`tls: { ca: ${ca.certFile} }`));
    const before = backend.connections;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gateway.url}/v1/models?n=${i}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ url: `/v1/models?n=${i}` });
    }
    expect(backend.received[0]!.headers.host).toBe(`127.0.0.1:${backend.port}`);
    // keep-alive: the pool reused its TLS connection instead of a handshake per request
    expect(backend.connections - before).toBe(1);
  });

  it('a new connection to a known backend resumes its TLS session instead of a full handshake', async () => {
    const resumed: boolean[] = [];
    const record = (_req: unknown, res: { socket: TLSSocket | null }) => resumed.push(res.socket!.isSessionReused());
    backend.server.prependListener('request', record);
    try {
      gateway = await startGateway(upstreamYaml(`tls: { ca: ${ca.certFile} }`));
      expect((await fetch(`${gateway.url}/one`)).status).toBe(200);
      backend.server.closeAllConnections(); // the backend drops the kept-alive connection
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await fetch(`${gateway.url}/two`)).status).toBe(200);
      expect(resumed).toEqual([false, true]);
    } finally {
      backend.server.off('request', record);
    }
  });

  it('answers 502 with a TLS problem type and logs it when the certificate is from an unknown CA', async () => {
    gateway = await startGateway(upstreamYaml(`tls: { ca: ${otherCa.certFile} }`));
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ type: 'urn:spillway:problem:upstream-tls-error', status: 502, upstream: 'secure' });
    const logged = gateway.logs.events('backend.tls_error');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 40, upstream: 'secure', backend: backend.url });
    expect(String(logged[0]!.code)).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER/);
    expect(backend.received).toHaveLength(0);
  });

  it('refuses a certificate signed by a CA outside the system store when no tls.ca is given', async () => {
    gateway = await startGateway(upstreamYaml(''));
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { type: string }).type).toBe('urn:spillway:problem:upstream-tls-error');
  });

  it('insecureSkipVerify accepts any certificate and warns at start', async () => {
    gateway = await startGateway(upstreamYaml('tls: { insecureSkipVerify: true }'));
    expect(gateway.logs.events('tls.insecure')).toEqual([expect.objectContaining({ level: 40, upstream: 'secure', backend: backend.url })]);
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(200);
  });

  it('sends tls.servername as SNI and checks the certificate against it', async () => {
    gateway = await startGateway(upstreamYaml(`tls: { ca: ${ca.certFile}, servername: eastus.test }`));
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(200);
    expect(backend.received[0]!.servername).toBe('eastus.test');
    // Host stays the backend's address (hostHeader: backend)
    expect(backend.received[0]!.headers.host).toBe(`127.0.0.1:${backend.port}`);
  });

  it('rejects a certificate that does not carry the expected name', async () => {
    gateway = await startGateway(upstreamYaml(`tls: { ca: ${ca.certFile}, servername: westus.test }`));
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { type: string }).type).toBe('urn:spillway:problem:upstream-tls-error');
    expect(gateway.logs.events('backend.tls_error')[0]).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('SNI follows the backend, not a preserved client Host', async () => {
    gateway = await startGateway(`upstreams:
  secure:
    hostHeader: preserve
    tls: { ca: ${ca.certFile}, servername: eastus.test }
    backends: [ { url: ${backend.url} } ]
routes:
  - upstream: secure
`);
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(200);
    expect(backend.received[0]!.servername).toBe('eastus.test');
    expect(backend.received[0]!.headers.host).toBe(new URL(gateway.url).host);
  });

  it('a failed TLS handshake (never a request byte sent) fails over to the next backend, even for a POST', async () => {
    const good = await startTlsBackend(await makeServerCert(otherCa), undefined, 'good');
    try {
      gateway = await startGateway(`upstreams:
  secure:
    backends:
      - { url: ${backend.url}, priority: 1, tls: { ca: ${otherCa.certFile} } }
      - { url: ${good.url}, priority: 2, tls: { ca: ${otherCa.certFile} } }
routes:
  - upstream: secure
`);
      const res = await fetch(`${gateway.url}/pay`, { method: 'POST', body: 'once' });
      expect(res.status).toBe(200);
      expect(good.received.map((r) => r.body)).toEqual(['once']);
      expect(backend.received).toHaveLength(0);
      expect(gateway.logs.events('backend.tls_error')).toHaveLength(1);
    } finally {
      await good.close();
    }
  });

  it("a backend's own tls settings override the upstream's, field by field", async () => {
    const second = await startTlsBackend(await makeServerCert(otherCa), undefined, 'second');
    try {
      gateway = await startGateway(`upstreams:
  secure:
    tls: { ca: ${ca.certFile}, servername: eastus.test }
    backends:
      - { url: ${backend.url}, priority: 1 }
      - { url: ${second.url}, priority: 2, tls: { ca: ${otherCa.certFile} } }
routes:
  - match: { path: /first }
    upstream: secure
`);
      expect((await fetch(`${gateway.url}/first`)).status).toBe(200);
      // the second backend: its own CA, the upstream's servername (which its cert lacks) → only the CA overrides
      const view = (await (await fetch(`${gateway.adminUrl}/admin/upstreams`)).json()) as {
        upstreams: { secure: { backends: Array<{ tls: unknown }> } };
      };
      expect(view.upstreams.secure.backends[0]!.tls).toEqual({ ca: ca.certFile, verify: true, servername: 'eastus.test' });
      expect(view.upstreams.secure.backends[1]!.tls).toEqual({ ca: otherCa.certFile, verify: true, servername: 'eastus.test' });
    } finally {
      await second.close();
    }
  });
});

describe('TLS config checks', () => {
  it('names a missing CA file with its line', () => {
    const issues = issuesIfAny(
      `upstreams:\n  s:\n    tls: { ca: /nonexistent/ca.pem }\n    backends: [ { url: https://127.0.0.1:1 } ]\nroutes:\n  - upstream: s\n`,
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 3, path: 'upstreams.s.tls.ca' });
    expect(issues[0]!.message).toContain('cannot read "/nonexistent/ca.pem": file not found');
  });

  it('refuses a CA file that is not a certificate', async () => {
    const file = await writeTempConfig('not a pem', 'ca.pem');
    const issues = issuesIfAny(
      `upstreams:\n  s:\n    backends: [ { url: https://127.0.0.1:1, tls: { ca: ${file} } } ]\nroutes:\n  - upstream: s\n`,
    );
    expect(issues[0]).toMatchObject({ line: 3, path: 'upstreams.s.backends[0].tls.ca' });
    expect(issues[0]!.message).toContain('holds no PEM certificate');
    const broken = await writeTempConfig('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'ca.pem');
    expect(
      issuesIfAny(
        `upstreams:\n  s:\n    backends: [ { url: https://127.0.0.1:1, tls: { ca: ${broken} } } ]\nroutes:\n  - upstream: s\n`,
      )[0]!.message,
    ).toContain('not a valid PEM certificate');
  });

  it('refuses backend tls on an http:// URL', () => {
    const issues = issuesIfAny(
      `upstreams:\n  s:\n    backends: [ { url: http://127.0.0.1:1, tls: { insecureSkipVerify: true } } ]\nroutes:\n  - upstream: s\n`,
    );
    expect(issues[0]!.message).toBe('tls applies to https:// backends only');
  });

  it('a CA file changed on disk is used after a reload (new pool)', async () => {
    const file = await writeTempConfig(otherCa.cert, 'rotating-ca.pem');
    gateway = await startGateway(upstreamYaml(`tls: { ca: ${file} }`));
    expect((await fetch(`${gateway.url}/x`)).status).toBe(502);
    await writeFile(file, ca.cert);
    const { config } = parseConfigText(`listen: { host: 127.0.0.1, port: 0 }\n${upstreamYaml(`tls: { ca: ${file} }`)}`, 'reload.yaml', {});
    gateway.gateway.apply(config, 'reload.yaml');
    expect((await fetch(`${gateway.url}/x`)).status).toBe(200);
  });
});
