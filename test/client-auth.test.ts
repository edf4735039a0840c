// Route `auth`: API keys (config list or file, re-read on reload), bearer JWTs, 401 otherwise;
// the identity proved is the default rate-limit key. And jwt.requireExp for both users of JWTs.

import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../src/config/load.js';
import { startBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { hit, signHs256 } from './helpers/ratelimit.js';
import { startGatewayFromFile } from './helpers/reload.js';
import WebSocket from 'ws';

const live = perTest();
const secret = 'auth-test-secret-of-some-length-0123456789';

async function start(routeExtra: string, top = ''): Promise<string> {
  const app = await startBackend();
  live.backends = [app];
  live.gateway = await startGateway(`${top}
upstreams: { app: { backends: [ { url: ${app.url} } ] } }
routes:
  - match: { path: /open }
    upstream: app
  - match: { path: / }
    upstream: app
${routeExtra}
`);
  return live.gateway.url;
}

function rawStatus(gatewayUrl: string, headers: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(gatewayUrl).port), '127.0.0.1', () =>
      socket.write(`GET /x HTTP/1.1\r\nHost: a\r\n${headers}Connection: close\r\n\r\n`),
    );
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

function problemType(body: string): string {
  return (JSON.parse(body) as { type: string }).type.replace('urn:spillway:problem:', '');
}

describe('auth.apiKeys', () => {
  it('a listed key passes; none, a wrong one or one sent twice does not', async () => {
    const url = await start(`    auth:
      apiKeys:
        keys: [ k-alice-0123456789, { key: k-bob-0123456789, id: bob } ]`);
    expect((await hit(`${url}/x`, { 'x-api-key': 'k-alice-0123456789' })).status).toBe(200);
    expect((await hit(`${url}/x`, { 'x-api-key': 'k-bob-0123456789' })).status).toBe(200);
    const none = await hit(`${url}/x`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    expect(problemType(none.body)).toBe('client-unauthenticated');
    expect(none.headers.get('www-authenticate')).toBeNull();
    const wrong = await hit(`${url}/x`, { 'x-api-key': 'k-alice-012345678' });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).detail).toContain('the API key is not valid');
    // two header lines: refused, never joined into a third key
    expect(await rawStatus(url, 'x-api-key: k-alice-0123456789\r\nx-api-key: k-bob-0123456789\r\n')).toBe(400);
    // one line holding two keys is no key at all
    expect((await hit(`${url}/x`, { 'x-api-key': 'k-alice-0123456789, k-bob-0123456789' })).status).toBe(401);
    // a route without auth stays open
    expect((await hit(`${url}/open`)).status).toBe(200);
    // the keys never show in the admin config view
    const view = await (await fetch(`${live.gateway!.adminUrl}/admin/config`)).text();
    expect(view).not.toContain('k-alice-0123456789');
    expect(view).not.toContain('k-bob-0123456789');
  });

  it('keys from a file, re-read when the config reloads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spillway-keys-'));
    const keys = join(dir, 'keys.txt');
    await writeFile(keys, '# id key\nalice k-alice-0123456789\n\n');
    const app = await startBackend();
    live.backends = [app];
    const gw = await startGatewayFromFile(`upstreams: { app: { backends: [ { url: ${app.url} } ] } }
routes:
  - match: { path: / }
    upstream: app
    auth: { apiKeys: { header: X-Key, file: ${keys} } }
`);
    live.gateway = gw;
    expect((await hit(`${gw.url}/x`, { 'x-key': 'k-alice-0123456789' })).status).toBe(200);
    expect((await hit(`${gw.url}/x`, { 'x-key': 'k-carol-0123456789' })).status).toBe(401);
    await writeFile(keys, 'carol k-carol-0123456789\n');
    const reloaded = await loadConfigFile(gw.file);
    gw.gateway.apply(reloaded.config, gw.file);
    expect((await hit(`${gw.url}/x`, { 'x-key': 'k-carol-0123456789' })).status).toBe(200);
    expect((await hit(`${gw.url}/x`, { 'x-key': 'k-alice-0123456789' })).status).toBe(401);
  });

  it('an unreadable key file is a config error at file:line, not a crash', async () => {
    const { issuesOf } = await import('./helpers/config.js');
    const issues = issuesOf(`upstreams: { app: { backends: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - match: { path: / }
    upstream: app
    auth: { apiKeys: { file: /nonexistent/keys.txt } }
`);
    expect(issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^5 routes\[0\]\.auth\.apiKeys\.file: cannot read API key file/),
    ]);
  });
});

describe('auth.jwt', () => {
  it('a verified bearer token passes; none, forged or one without the identity claim gets 401 with a Bearer challenge', async () => {
    const url = await start(`    auth: { jwt: { secret: ${secret} } }`);
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await signHs256({ sub: 'alice' }, secret)}` })).status).toBe(200);
    const none = await hit(`${url}/x`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const forged = await signHs256({ sub: 'alice' }, 'another-secret-entirely-0123456789');
    expect((await hit(`${url}/x`, { authorization: `Bearer ${forged}` })).status).toBe(401);
    const anonymous = await hit(`${url}/x`, { authorization: `Bearer ${await signHs256({ scope: 'x' }, secret)}` });
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body).detail).toContain('no "sub" claim');
  });

  it('either method suffices when both are configured', async () => {
    const url = await start(`    auth: { apiKeys: { keys: [ k-alice-0123456789 ] }, jwt: { secret: ${secret} } }`);
    expect((await hit(`${url}/x`, { 'x-api-key': 'k-alice-0123456789' })).status).toBe(200);
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await signHs256({ sub: 'bob' }, secret)}` })).status).toBe(200);
    expect((await hit(`${url}/x`, { 'x-api-key': 'nope' })).status).toBe(401);
  });

  it('refuses WebSocket handshakes without credentials', async () => {
    const url = await start(`    auth: { apiKeys: { keys: [ k-alice-0123456789 ] } }`);
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(status).toBe(401);
  });
});

describe('jwt.requireExp', () => {
  const noExp = () => new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

  it('route auth: a token that never expires is refused; one with exp passes', async () => {
    const url = await start(`    auth: { jwt: { secret: ${secret}, requireExp: true } }`);
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await noExp()}` })).status).toBe(401);
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await signHs256({ sub: 'alice' }, secret)}` })).status).toBe(200);
  });

  it('rate-limit jwt keys: a token without exp names no client (default: still accepted)', async () => {
    const policy = (extra: string) => `rateLimits:
  p: { key: "jwt:sub", capacity: 5, refill: 1/h, jwt: { secret: ${secret}${extra} } }`;
    let url = await start('    rateLimit: p', policy(''));
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await noExp()}` })).status).toBe(200);
    await live.gateway!.close();
    live.gateway = undefined;
    url = await start('    rateLimit: p', policy(', requireExp: true'));
    const refused = await hit(`${url}/x`, { authorization: `Bearer ${await noExp()}` });
    expect(refused.status).toBe(401);
    expect(problemType(refused.body)).toBe('client-key-missing');
  });
});

describe('the authenticated identity is the default rate-limit key', () => {
  it('keys of one identity share a bucket; another identity has its own', async () => {
    const url = await start(
      `    auth:
      apiKeys:
        keys: [ { key: k-one-0123456789, id: team-a }, { key: k-two-0123456789, id: team-a }, { key: k-three-0123456789, id: team-b } ]
    rateLimit: per-client`,
      'rateLimits:\n  per-client: { capacity: 2, refill: 1/h }',
    );
    const send = (key: string) => hit(`${url}/x`, { 'x-api-key': key }).then((r) => r.status);
    expect([await send('k-one-0123456789'), await send('k-two-0123456789'), await send('k-one-0123456789')]).toEqual([200, 200, 429]);
    expect(await send('k-three-0123456789')).toBe(200);
    // an invented key gets no bucket of its own: 401 before any limit
    expect(await send('k-invented')).toBe(401);
  });

  it('a policy with the default key on a route without auth refuses (no identity): 401 client-key-missing', async () => {
    const url = await start('    rateLimit: per-client', 'rateLimits:\n  per-client: { capacity: 2, refill: 1/h }');
    const res = await hit(`${url}/x`);
    expect(res.status).toBe(401);
    expect(problemType(res.body)).toBe('client-key-missing');
  });
});
