// Who is the client? header keys, ip (X-Forwarded-For only from trusted proxies), verified JWT
// claims, route, combinations — and what happens without a key. Plus config validation.

import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { startBackend } from './helpers/backend.js';
import { startGateway, writeTempConfig } from './helpers/gateway.js';
import { hit, signHs256 } from './helpers/ratelimit.js';
import { issuesOf, expectCheckPasses } from './helpers/config.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

async function start(policy: string): Promise<string> {
  live.backend = await startBackend();
  live.gateway = await startGateway(`upstreams:
  app:
    backends: [ { url: ${live.backend.url} } ]
rateLimits:
  p:
${policy}
routes:
  - match: { path: / }
    upstream: app
    rateLimit: p
`);
  return live.gateway.url;
}

/** How many of `n` requests with these headers pass. */
async function passes(url: string, headers: Record<string, string>, n = 3): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await hit(`${url}/x`, headers)).status === 200) ok++;
  return ok;
}

describe('missing key', () => {
  it('deny: 401 problem+json naming the policy; the backend is not called', async () => {
    const url = await start('    key: header:x-api-key\n    capacity: 5\n    refill: 1/s');
    const response = await hit(`${url}/x`);
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(JSON.parse(response.body)).toMatchObject({ type: 'urn:spillway:problem:client-key-missing', status: 401, policy: 'p' });
    expect((await hit(`${url}/x`, { 'x-api-key': '' })).status).toBe(401);
    expect(live.backend!.received).toHaveLength(0);
  });

  it("ip: requests without the key share their address's bucket", async () => {
    const url = await start('    key: header:x-api-key\n    capacity: 2\n    refill: 1/h\n    missingKey: ip');
    expect(await passes(url, {}, 4)).toBe(2);
    expect(await passes(url, { 'x-api-key': 'k' }, 4)).toBe(2);
  });
});

describe('ip key and X-Forwarded-For', () => {
  it('a spoofed X-Forwarded-For from an untrusted peer is ignored: the socket address is the key', async () => {
    const url = await start('    key: ip\n    capacity: 2\n    refill: 1/h\n    trustedProxies: [10.0.0.0/8]');
    let ok = 0;
    for (let i = 0; i < 6; i++) if ((await hit(`${url}/x`, { 'x-forwarded-for': `203.0.113.${i}` })).status === 200) ok++;
    expect(ok).toBe(2);
  });

  it('from a trusted proxy, the first untrusted hop from the right is the client', async () => {
    const url = await start('    key: ip\n    capacity: 1\n    refill: 1/h\n    trustedProxies: [127.0.0.1, 10.0.0.0/8]');
    expect(await passes(url, { 'x-forwarded-for': '198.51.100.1' })).toBe(1);
    expect(await passes(url, { 'x-forwarded-for': '198.51.100.2' })).toBe(1);
    // a client that prepends a fake address through the proxy chain is still keyed by its real one
    expect(await passes(url, { 'x-forwarded-for': '6.6.6.6, 198.51.100.1, 10.1.2.3' })).toBe(0);
    expect(await passes(url, { 'x-forwarded-for': '7.7.7.7, 198.51.100.3, 10.1.2.3' })).toBe(1);
    // garbage stops the walk at the last trusted hop (here: the loopback peer)
    expect(await passes(url, { 'x-forwarded-for': 'not-an-ip' })).toBe(1);
    expect(await passes(url, {})).toBe(0);
  });
});

describe('jwt key', () => {
  const secret = 'test-secret-of-some-length-0123456789';

  it('HS256: the verified claim selects the bucket; forged, unsigned and expired tokens never do', async () => {
    const url = await start(`    key: jwt:sub
    capacity: 2
    refill: 1/h
    jwt: { secret: ${secret} }`);
    const alice = await signHs256({ sub: 'alice' }, secret);
    const bob = await signHs256({ sub: 'bob' }, secret);
    expect(await passes(url, { authorization: `Bearer ${alice}` })).toBe(2);
    expect(await passes(url, { authorization: `Bearer ${bob}` })).toBe(2);

    const forged = await signHs256({ sub: 'carol' }, 'another-secret-entirely-0123456789');
    const forgedResponse = await hit(`${url}/x`, { authorization: `Bearer ${forged}` });
    expect(forgedResponse.status).toBe(401);
    expect(JSON.parse(forgedResponse.body)).toMatchObject({ type: 'urn:spillway:problem:client-key-missing' });

    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'dave' })}.`;
    expect((await hit(`${url}/x`, { authorization: `Bearer ${unsigned}` })).status).toBe(401);
    // alice's payload with a fresh sub but alice's signature: tampered
    const [h, , s] = alice.split('.');
    expect((await hit(`${url}/x`, { authorization: `Bearer ${h}.${b64({ sub: 'eve' })}.${s}` })).status).toBe(401);
    const expired = await new SignJWT({ sub: 'frank' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(secret));
    expect((await hit(`${url}/x`, { authorization: `Bearer ${expired}` })).status).toBe(401);
    expect((await hit(`${url}/x`, { authorization: 'Bearer garbage' })).status).toBe(401);
  });

  it('a forged token with missingKey: ip falls back to the address, never to the claimed identity', async () => {
    const url = await start(`    key: jwt:sub
    capacity: 1
    refill: 1/h
    missingKey: ip
    jwt: { secret: ${secret} }`);
    const forgedA = await signHs256({ sub: 'a' }, 'wrong-secret-wrong-secret-wrong');
    const forgedB = await signHs256({ sub: 'b' }, 'wrong-secret-wrong-secret-wrong');
    expect(await passes(url, { authorization: `Bearer ${forgedA}` })).toBe(1);
    expect(await passes(url, { authorization: `Bearer ${forgedB}` })).toBe(0); // same ip bucket
    expect(await passes(url, { authorization: `Bearer ${await signHs256({ sub: 'a' }, secret)}` })).toBe(1);
  });

  it('JWKS file: tokens signed by the key set verify, others do not; nested claims work', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const other = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const file = await writeTempConfig(JSON.stringify({ keys: [jwk] }), 'jwks.json');
    const url = await start(`    key: jwt:org.id
    capacity: 1
    refill: 1/h
    jwt: { jwks: ${file}, issuer: https://issuer.example }`);
    const sign = (key: CryptoKey, org: string, iss = 'https://issuer.example') =>
      new SignJWT({ org: { id: org } }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(iss).setExpirationTime('5m').sign(key);
    expect(await passes(url, { authorization: `Bearer ${await sign(privateKey, 'acme')}` })).toBe(1);
    expect(await passes(url, { authorization: `Bearer ${await sign(privateKey, 'globex')}` })).toBe(1);
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await sign(other.privateKey, 'initech')}` })).status).toBe(401);
    expect((await hit(`${url}/x`, { authorization: `Bearer ${await sign(privateKey, 'initech', 'https://evil.example')}` })).status).toBe(
      401,
    );
  });
});

describe('combined keys', () => {
  it('[header:x-api-key, route]: one bucket per key and route', async () => {
    live.backend = await startBackend();
    live.gateway = await startGateway(`upstreams:
  app:
    backends: [ { url: ${live.backend.url} } ]
rateLimits:
  p: { key: [header:x-api-key, route], capacity: 1, refill: 1/h }
routes:
  - { name: a, match: { path: /a }, upstream: app, rateLimit: p }
  - { name: b, match: { path: /b }, upstream: app, rateLimit: p }
`);
    const send = async (path: string, key: string) => (await hit(`${live.gateway!.url}${path}`, { 'x-api-key': key })).status;
    expect([await send('/a', 'k'), await send('/a', 'k'), await send('/b', 'k'), await send('/a', 'j'), await send('/b', 'k')]).toEqual([
      200, 429, 200, 200, 429,
    ]);
  });
});

describe('config', () => {
  const base = (rest: string) => `upstreams:
  app:
    backends: [ { url: http://127.0.0.1:9 } ]
${rest}`;

  it('bad rate-limit config is reported at file:line:col, never a crash', () => {
    const issues = issuesOf(
      base(`rateLimits:
  p:
    key: header:x-api-key
    capacity: 10
    refill: 10 per second
  q:
    key: cookie:sid
    capacity: 1
    refill: 1/s
  r:
    key: jwt:sub
    capacity: 1
    refill: 1/s
    cost: 2
routes:
  - match: { path: / }
    upstream: app
    rateLimit: [p, nope]
`),
    );
    const text = issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    expect(text).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^8:13 rateLimits\.p\.refill: expected a rate like "10\/s"/),
        expect.stringMatching(/^10:10 rateLimits\.q\.key: a key is "header:<name>"/),
        expect.stringMatching(/rateLimits\.r\.jwt: a jwt:<claim> key needs jwt.secret or jwt.jwks/),
        expect.stringMatching(/rateLimits\.r\.cost: cost 2 is larger than capacity 1/),
      ]),
    );
    const refs = issuesOf(
      base(`rateLimits:
  p: { key: route, capacity: 1, refill: 1/s }
routes:
  - match: { path: / }
    upstream: app
    rateLimit: [p, nope]
  - { match: { path: /x }, upstream: app, rateLimit: other }
`),
    ).map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    expect(refs).toEqual([
      '9:20 routes[0].rateLimit[1]: unknown rate limit policy "nope" (defined: p)',
      '10:54 routes[1].rateLimit: unknown rate limit policy "other" (defined: p)',
    ]);
  });

  it('redis needs url or cluster; queue mode needs maxWait; a JWKS file must exist', () => {
    const issues = issuesOf(
      base(`redis: { keyPrefix: "x:" }
rateLimits:
  p: { key: route, capacity: 1, refill: 1/s, mode: queue }
  j: { key: jwt:sub, capacity: 1, refill: 1/s, jwt: { jwks: /nonexistent/jwks.json } }
routes:
  - { match: { path: / }, upstream: app, rateLimit: p }
`),
    ).map((i) => `${i.path}: ${i.message}`);
    expect(issues).toEqual(
      expect.arrayContaining([
        'redis: set exactly one of redis.url, redis.cluster and redis.sentinels',
        'rateLimits.p.maxWait: mode: queue needs a maxWait, like "2s"',
        expect.stringMatching(/^rateLimits\.j\.jwt\.jwks: cannot read JWKS file/),
      ]),
    );
  });

  it('config/rate-limits.yaml passes `spillway check`', async () => {
    await expectCheckPasses('config/rate-limits.yaml', { API_KEY_GOLD: 'x', JWT_SECRET: 'y' });
  });

  it('a route without rateLimit carries no limiter', async () => {
    const { config } = parseConfigText(base(`routes:\n  - { match: { path: / }, upstream: app }\n`), 'g.yaml', {});
    expect(config.rateLimits).toEqual({});
    expect(config.routes[0]!.rateLimit).toBeUndefined();
  });
});
