// One redaction for the config, driven by the schema's secret marks: no admin view
// (/admin/config, /admin/upstreams, /admin/routes, /admin/events) and no log line shows a rate
// limit tier key, a header or cookie match value, a private JWK member, URL credentials, a header
// value sent to a backend or the admin token.

import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBackend } from './helpers/backend.js';
import { startGateway, writeTempConfig } from './helpers/gateway.js';
import { httpRequest } from './helpers/http.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

const TOKEN = 'admin-token-a1b2c3d4e5f60718';
const SECRETS = {
  tierKey: 'gold-key-7f3a9c1e',
  otherTierKey: 'gold-key-2b8d4e6f',
  matchHeader: 'let-me-in-5a1b2c3d',
  matchRegex: '^Bearer internal-9e8f7a6b',
  matchCookie: 'cookie-secret-4c5d6e7f',
  urlUser: 'svc-user-31ab',
  urlPassword: 'Backend-Pa55word-77',
  backendHeader: 'backend-header-secret-1a2b',
  adminToken: TOKEN,
};

/** A JWKS file holding a full RSA private key (what a careless operator might point jwt.jwks at). */
async function privateJwks(): Promise<{ file: string; members: string[] }> {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const file = join(dirname(await writeTempConfig('')), 'jwks.json');
  await writeFile(file, JSON.stringify({ keys: [{ ...jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
  const members = (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).map((name) => {
    const value = jwk[name];
    if (typeof value !== 'string') throw new Error(`no ${name} in the generated JWK`);
    return value;
  });
  return { file, members };
}

describe('secrets in admin views and logs', () => {
  it('are hidden everywhere: tier keys, match values, private JWK members, URL credentials, header values, the token', async () => {
    live.backend = await startBackend();
    const jwks = await privateJwks();
    const backendUrl = live.backend.url.replace('http://', `http://${SECRETS.urlUser}:${SECRETS.urlPassword}@`);
    live.gateway = await startGateway(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: ${TOKEN} }
log: { requests: { sample: 1 } }
upstreams:
  app:
    backends:
      - { url: "${backendUrl}", headers: { x-backend-key: ${SECRETS.backendHeader} } }
rateLimits:
  tiered:
    key: header:x-api-key
    capacity: 5
    refill: 1/s
    missingKey: ip
    tiers: { gold: { keys: [${SECRETS.tierKey}, ${SECRETS.otherTierKey}], capacity: 50 } }
  signed:
    key: jwt:sub
    capacity: 5
    refill: 1/s
    missingKey: ip
    jwt: { jwks: ${jwks.file} }
routes:
  - name: internal
    match:
      path: /internal
      headers: { x-internal: "${SECRETS.matchHeader}", authorization: { regex: "${SECRETS.matchRegex}" }, x-trace: { present: true } }
      cookies: { session: "${SECRETS.matchCookie}" }
    upstream: app
  - { name: rest, upstream: app, rateLimit: [tiered, signed] }
`);
    const gw = live.gateway;
    const secrets = [...Object.values(SECRETS), ...jwks.members];

    // Traffic that puts the values in play: a tier key from a client, the credentialed backend.
    const served = await httpRequest(`${gw.url}/orders?key=${SECRETS.tierKey}`, { headers: { 'x-api-key': SECRETS.tierKey } });
    expect(served.status).toBe(200);
    // Whatever a log line carries — here the whole parsed config — the values are scrubbed.
    gw.gateway.logger.info({ config: gw.gateway.snapshot.config }, `dump ${SECRETS.tierKey} ${jwks.members[0]}`);

    const auth = { authorization: `Bearer ${TOKEN}` };
    const views: Record<string, string> = {};
    for (const path of ['/admin/config', '/admin/upstreams', '/admin/routes', '/admin/events']) {
      const response = await httpRequest(gw.adminUrl + path, { headers: auth });
      expect(response.status).toBe(200);
      views[path] = response.body;
    }
    const logs = JSON.stringify(gw.logs.lines);
    expect(logs).toContain('"msg":"dump [redacted] [redacted]"');
    for (const secret of secrets) {
      for (const [path, body] of Object.entries(views)) expect(body, `${path} shows a secret`).not.toContain(secret);
      expect(logs, 'a log line shows a secret').not.toContain(secret);
    }

    // What is not secret is still shown, so the views stay useful.
    const config = JSON.parse(views['/admin/config']!).config;
    expect(config.admin).toMatchObject({ token: '[redacted]' });
    expect(config.upstreams.app.backends[0]).toMatchObject({
      url: `http://[redacted]@127.0.0.1:${new URL(live.backend.url).port}`,
      headers: { 'x-backend-key': '[redacted]' },
    });
    expect(config.rateLimits.tiered.tiers.gold).toMatchObject({ keys: ['[redacted]', '[redacted]'], capacity: 50 });
    expect(config.rateLimits.signed.jwt.jwks.keys[0]).toMatchObject({
      kid: 'k1',
      kty: 'RSA',
      e: 'AQAB',
      d: '[redacted]',
      p: '[redacted]',
      q: '[redacted]',
      dp: '[redacted]',
      dq: '[redacted]',
      qi: '[redacted]',
    });
    const expectedMatch = {
      path: '/internal',
      headers: { 'x-internal': '[redacted]', authorization: { regex: '[redacted]' }, 'x-trace': { present: true } },
      cookies: { session: '[redacted]' },
    };
    expect(config.routes[0].match).toEqual(expectedMatch);
    const upstreams = JSON.parse(views['/admin/upstreams']!);
    expect(upstreams.upstreams.app.backends[0].url).toBe(`http://[redacted]@127.0.0.1:${new URL(live.backend.url).port}`);
    const routes = JSON.parse(views['/admin/routes']!);
    expect(routes.routes[0]).toMatchObject({ name: 'internal', match: expectedMatch });
  });
});
