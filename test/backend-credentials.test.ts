import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { parseConfigText } from '../src/config/load.js';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { runCli, startGateway, writeTempConfig, type TestGateway } from './helpers/gateway.js';
import { startTlsBackend } from './helpers/tls-backend.js';
import { makeCa, makeServerCert } from './helpers/tls-certs.js';

const KEYS = { EASTUS_KEY: 'east-secret-1f9c2b7e', WESTUS_KEY: 'west-secret-8a3d4c6f', OPENAI_KEY: 'sk-openai-secret-5e6f7a8b' };
const CLIENT_KEY = 'client-own-key-0000';

let gateway: TestGateway | undefined;
let backends: TestBackend[] = [];
afterEach(async () => {
  await gateway?.close();
  await closeAll(...backends);
  gateway = undefined;
  backends = [];
  for (const name of Object.keys(KEYS)) delete process.env[name];
});

function withKeys(): void {
  Object.assign(process.env, KEYS);
}

/** One host serving two Azure-style deployments; `busy` names deployments that answer 429. */
async function azureHost(busy: Set<string>): Promise<TestBackend> {
  return startBackend((req, res) => {
    const deployment = /^\/openai\/deployments\/([^/]+)\//.exec(req.url ?? '')?.[1] ?? 'none';
    if (busy.has(deployment)) {
      res.writeHead(429, { 'retry-after-ms': '60000', 'content-type': 'application/json' });
      res.end('{"error":{"code":"429"}}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ deployment, url: req.url }));
  });
}

const azureYaml = (host: string, openai: string) => `upstreams:
  azure-gpt4o:
    backends:
      - url: ${host}/openai/deployments/gpt-4o-eastus
        priority: 1
        headers: { api-key: "\${EASTUS_KEY}" }
      - url: ${host}/openai/deployments/gpt-4o-westus
        priority: 1
        headers: { api-key: "\${WESTUS_KEY}" }
      - url: ${openai}/v1
        priority: 2
        headers: { authorization: "Bearer \${OPENAI_KEY}" }
        removeHeaders: [api-version]
routes:
  - match: { path: /openai/deployments/gpt-4o/ }
    upstream: azure-gpt4o
    rewrite: { stripPrefix: /openai/deployments/gpt-4o }
    removeHeaders: [api-key, authorization]
`;

const clientCall = (url: string) =>
  fetch(`${url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`, {
    method: 'POST',
    headers: { 'api-key': CLIENT_KEY, authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
    body: '{"messages":[]}',
  });

describe('per-backend credentials and deployment paths', () => {
  it("each backend receives its own key and deployment path; the client's key never arrives", async () => {
    withKeys();
    const host = await azureHost(new Set());
    const openai = await startBackend();
    backends = [host, openai];
    // random 0 → the first ready backend of the level, 0.99 → the last
    let next = 0;
    gateway = await startGateway(azureYaml(host.url, openai.url), { random: () => next });

    expect((await clientCall(gateway.url)).status).toBe(200);
    next = 0.99;
    expect((await clientCall(gateway.url)).status).toBe(200);

    expect(host.received.map((r) => r.url)).toEqual([
      '/openai/deployments/gpt-4o-eastus/chat/completions?api-version=2024-10-21',
      '/openai/deployments/gpt-4o-westus/chat/completions?api-version=2024-10-21',
    ]);
    expect(host.received[0]!.headers['api-key']).toBe(KEYS.EASTUS_KEY);
    expect(host.received[1]!.headers['api-key']).toBe(KEYS.WESTUS_KEY);
    for (const request of host.received) {
      expect(request.headers.authorization).toBeUndefined();
      expect(JSON.stringify(request.headers)).not.toContain(CLIENT_KEY);
      expect(request.body).toBe('{"messages":[]}');
    }
  });

  it('the spill-over provider gets its bearer token and its own path prefix', async () => {
    withKeys();
    const host = await azureHost(new Set(['gpt-4o-eastus', 'gpt-4o-westus']));
    const openai = await startBackend();
    backends = [host, openai];
    gateway = await startGateway(azureYaml(host.url, openai.url));
    const res = await clientCall(gateway.url);
    expect(res.status).toBe(200);
    expect(openai.received).toHaveLength(1);
    const got = openai.received[0]!;
    expect(got.url).toBe('/v1/chat/completions?api-version=2024-10-21');
    expect(got.headers.authorization).toBe(`Bearer ${KEYS.OPENAI_KEY}`);
    expect(got.headers['api-key']).toBeUndefined();
    expect(host.received).toHaveLength(2);
  });

  it('two deployments on one host cool down independently', async () => {
    withKeys();
    const busy = new Set(['gpt-4o-eastus']);
    const host = await azureHost(busy);
    const openai = await startBackend();
    backends = [host, openai];
    gateway = await startGateway(azureYaml(host.url, openai.url), { random: () => 0 });

    // eastus answers 429 → cools down; westus (same host, same connection pool) serves at once
    const first = await clientCall(gateway.url);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ deployment: 'gpt-4o-westus' });
    const second = await clientCall(gateway.url);
    expect(await second.json()).toMatchObject({ deployment: 'gpt-4o-westus' });
    expect(host.received.map((r) => r.url.split('/')[3])).toEqual(['gpt-4o-eastus', 'gpt-4o-westus', 'gpt-4o-westus']);
    expect(openai.received).toHaveLength(0);

    const view = (await (await fetch(`${gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: Record<string, { backends: Array<Record<string, unknown>> }>;
    };
    const [east, west] = view.upstreams['azure-gpt4o']!.backends;
    expect(east).toMatchObject({ state: 'cooling', throttled: 1 });
    expect(west).toMatchObject({ state: 'ready', throttled: 0, requests: 2 });
    // both deployments share one keep-alive pool to the host
    const [b0, b1] = gateway.gateway.snapshot.upstreams.get('azure-gpt4o')!.backends;
    expect(b0!.dispatcher).toBe(b1!.dispatcher);
    expect(b0!.state).not.toBe(b1!.state);
  });

  it('secrets never appear in logs, /metrics, admin output or problem responses', async () => {
    withKeys();
    const host = await azureHost(new Set(['gpt-4o-eastus']));
    backends = [host];
    const dead = await startBackend();
    const deadUrl = dead.url;
    await dead.close();
    gateway = await startGateway(azureYaml(host.url, deadUrl).replace('priority: 2', 'priority: 1'), { random: () => 0 });
    // a throttled attempt (logged cooldown), a served one, and a failing one (dead provider → 502)
    await clientCall(gateway.url);
    gateway.gateway.states
      .get(`azure-gpt4o ${host.url}/openai/deployments/gpt-4o-westus`)
      .coolDownUntil(Date.now() + 60_000, 'test', 'x', Date.now());
    const failing = await clientCall(gateway.url);
    expect(failing.status).toBe(502);
    const problem = await failing.text();

    const admin = await (await fetch(`${gateway.adminUrl}/admin/upstreams`)).text();
    const adminConfig = await (await fetch(`${gateway.adminUrl}/admin/config`)).text();
    expect(adminConfig).toContain('api-key');
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toContain('spillway_');
    const events = await (await fetch(`${gateway.adminUrl}/admin/events`)).text();
    expect(events).toContain('cooldown');
    expect(admin).toContain('"setsHeaders":["api-key"]');
    expect(admin).toContain('"setsHeaders":["authorization"]');
    const logs = JSON.stringify(gateway.logs.lines);
    expect(logs).toContain('backend.cooldown');
    for (const secret of Object.values(KEYS)) {
      expect(admin).not.toContain(secret);
      expect(adminConfig).not.toContain(secret);
      expect(metrics).not.toContain(secret);
      expect(events).not.toContain(secret);
      expect(logs).not.toContain(secret);
      expect(problem).not.toContain(secret);
    }
    expect(problem).not.toContain(CLIENT_KEY);
    expect(logs).not.toContain(CLIENT_KEY);
    expect(metrics).not.toContain(CLIENT_KEY);
  });

  it('upstream-level headers apply to every backend; a backend overrides them and may remove headers', async () => {
    const a = await startBackend();
    const b = await startBackend();
    backends = [a, b];
    gateway = await startGateway(`upstreams:
  app:
    headers: { x-tenant: acme, x-env: prod }
    removeHeaders: [cookie]
    backends:
      - { url: ${a.url}, priority: 1 }
      - { url: ${b.url}, priority: 2, headers: { X-Env: staging }, removeHeaders: [x-debug] }
routes:
  - upstream: app
`);
    const send = () => fetch(`${gateway!.url}/x`, { headers: { cookie: 'session=1', 'x-debug': '1', 'x-env': 'client' } });
    await send();
    gateway.gateway.snapshot.upstreams.get('app')!.backends[0]!.state.coolDownUntil(Date.now() + 60_000, 'test', 'x', Date.now());
    await send();
    expect(a.received[0]!.headers).toMatchObject({ 'x-tenant': 'acme', 'x-env': 'prod', 'x-debug': '1' });
    expect(a.received[0]!.headers.cookie).toBeUndefined();
    expect(b.received[0]!.headers).toMatchObject({ 'x-tenant': 'acme', 'x-env': 'staging' });
    expect(b.received[0]!.headers.cookie).toBeUndefined();
    expect(b.received[0]!.headers['x-debug']).toBeUndefined();
  });

  it('one URL may be listed twice under distinct names (two keys, two quotas), each with its own state', async () => {
    const api = await startBackend((req, res) => {
      if (req.headers.authorization === 'Bearer key-a') {
        res.writeHead(429, { 'retry-after': '30' });
        res.end();
        return;
      }
      res.end(String(req.headers.authorization));
    });
    backends = [api];
    gateway = await startGateway(`upstreams:
  openai:
    backends:
      - { name: org-a, url: ${api.url}/v1, priority: 1, headers: { authorization: Bearer key-a } }
      - { name: org-b, url: ${api.url}/v1, priority: 2, headers: { authorization: Bearer key-b } }
routes:
  - upstream: openai
`);
    const res = await fetch(`${gateway.url}/chat/completions`, { method: 'POST', body: '{}' });
    expect(await res.text()).toBe('Bearer key-b');
    const view = (await (await fetch(`${gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { openai: { backends: Array<Record<string, unknown>> } };
    };
    expect(view.upstreams.openai.backends.map((b) => [b.name, b.state])).toEqual([
      ['org-a', 'cooling'],
      ['org-b', 'ready'],
    ]);
  });
});

describe('credential config checks', () => {
  const issuesOf = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
    try {
      parseConfigText(yaml, 'gateway.yaml', env);
    } catch (error) {
      if (error instanceof ConfigError) return error.issues;
      throw error;
    }
    return [];
  };

  it('refuses gateway-managed and malformed header names, and never quotes a bad value', () => {
    const issues = issuesOf(
      `upstreams:
  app:
    backends:
      - url: http://127.0.0.1:1
        headers: { host: x, "bad name": y, api-key: "\${KEY}" }
routes:
  - upstream: app
`,
      { KEY: 'line1\nsecret-line2' },
    );
    const messages = issues.map((issue) => `${issue.path}: ${issue.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringContaining('managed by the gateway'),
        expect.stringContaining('not a valid header name'),
        expect.stringContaining('line break, control or non-Latin-1 character (value not shown)'),
      ]),
    );
    expect(JSON.stringify(issues)).not.toContain('secret-line2');
    const emoji = issuesOf(
      `upstreams:\n  app:\n    backends: [ { url: http://127.0.0.1:1, headers: { x-key: "\${KEY}" } } ]\nroutes:\n  - upstream: app\n`,
      { KEY: 'key-\u{1F600}' },
    );
    expect(emoji).toEqual([
      expect.objectContaining({ path: 'upstreams.app.backends[0].headers.x-key', message: expect.stringContaining('value not shown') }),
    ]);
  });

  it('a missing key variable is named, with its line', () => {
    const issues = issuesOf(
      `upstreams:\n  app:\n    backends:\n      - { url: http://127.0.0.1:1, headers: { api-key: "\${EASTUS_KEY}" } }\nroutes:\n  - upstream: app\n`,
    );
    expect(issues).toEqual([
      expect.objectContaining({ line: 4, message: expect.stringContaining('environment variable EASTUS_KEY is not set') }),
    ]);
  });

  it('names a duplicate backend name', () => {
    const issues = issuesOf(
      `upstreams:\n  app:\n    backends:\n      - { name: a, url: http://127.0.0.1:1 }\n      - { name: a, url: http://127.0.0.1:2 }\nroutes:\n  - upstream: app\n`,
    );
    expect(issues).toEqual([
      expect.objectContaining({ line: 5, path: 'upstreams.app.backends[1].name', message: 'backend name "a" is used twice' }),
    ]);
  });

  it('spillway check prints no secret', async () => {
    const file = await writeTempConfig(azureYaml('https://eastus.example.com', 'https://api.example.com'));
    const result = await runCli(['check', '--config', file], KEYS);
    expect(result.code).toBe(0);
    for (const secret of Object.values(KEYS)) expect(result.stdout + result.stderr).not.toContain(secret);
  });
});

describe("the issue's sketch, over HTTPS", () => {
  it('two Azure regions and OpenAI behind one route: verified TLS, own keys and deployment paths, failover on 429', async () => {
    const ca = await makeCa();
    const cert = await makeServerCert(ca);
    const calls: Array<{ url: string; key: string | undefined; auth: string | undefined }> = [];
    const region = (busy: boolean) => (req: IncomingMessage, res: ServerResponse) => {
      calls.push({ url: req.url ?? '', key: req.headers['api-key'] as string | undefined, auth: req.headers.authorization });
      res.writeHead(busy ? 429 : 200, busy ? { 'x-ms-retry-after-ms': '30000' } : { 'content-type': 'application/json' });
      res.end(busy ? '' : '{"ok":true}');
    };
    const east = await startTlsBackend(cert, region(true));
    const west = await startTlsBackend(cert, region(false));
    const openai = await startTlsBackend(cert, region(false));
    cleanupTls = [east, west, openai];
    withKeys();
    gateway = await startGateway(
      `upstreams:
  azure-gpt4o:
    backends:
      - url: ${east.url}/openai/deployments/gpt-4o-eastus
        priority: 1
        headers: { api-key: "\${EASTUS_KEY}" }
      - url: ${west.url}/openai/deployments/gpt-4o-westus
        priority: 1
        headers: { api-key: "\${WESTUS_KEY}" }
      - url: ${openai.url}/v1
        priority: 2
        headers: { authorization: "Bearer \${OPENAI_KEY}" }
    tls: { ca: ${ca.certFile} }
routes:
  - match: { path: /openai/deployments/gpt-4o/ }
    upstream: azure-gpt4o
    rewrite: { stripPrefix: /openai/deployments/gpt-4o }
    removeHeaders: [api-key]
`,
      { random: () => 0 },
    );
    const res = await fetch(`${gateway.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'api-key': CLIENT_KEY },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(calls).toEqual([
      { url: '/openai/deployments/gpt-4o-eastus/chat/completions?api-version=2024-10-21', key: KEYS.EASTUS_KEY, auth: undefined },
      { url: '/openai/deployments/gpt-4o-westus/chat/completions?api-version=2024-10-21', key: KEYS.WESTUS_KEY, auth: undefined },
    ]);
    expect(openai.received).toHaveLength(0);
  });
});

let cleanupTls: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(cleanupTls.map((thing) => thing.close()));
  cleanupTls = [];
});
