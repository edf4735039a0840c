// Limiter state across config reloads, a queued client that leaves, and JWKS fetched from a URL.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { startBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { hit, limiterEvents, sleep } from './helpers/ratelimit.js';
import { perTest } from './helpers/per-test.js';

let server: Server | undefined;
const live = perTest(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

const config = (url: string, capacity: number) => `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  app:
    backends: [ { url: ${url} } ]
rateLimits:
  per-key: { key: header:x-api-key, capacity: ${capacity}, refill: 1/h }
routes:
  - { match: { path: / }, upstream: app, rateLimit: per-key }
`;

describe('config reload', () => {
  it('buckets survive a reload; new numbers apply to them', async () => {
    live.backend = await startBackend();
    live.gateway = await startGateway(config(live.backend.url, 2));
    const send = async () => (await hit(`${live.gateway!.url}/x`, { 'x-api-key': 'k' })).status;
    expect([await send(), await send(), await send()]).toEqual([200, 200, 429]);

    live.gateway.gateway.apply(parseConfigText(config(live.backend.url, 2), 'test.yaml', {}).config, 'test.yaml');
    expect(await send()).toBe(429); // same bucket, still empty

    live.gateway.gateway.apply(parseConfigText(config(live.backend.url, 5), 'test.yaml', {}).config, 'test.yaml');
    const again = await hit(`${live.gateway.url}/x`, { 'x-api-key': 'k' });
    expect(again.status).toBe(429); // a bigger bucket does not refill by itself
    expect(again.headers.get('ratelimit-policy')).toBe('"per-key";q=5;w=18000');
  });
});

describe('queue mode', () => {
  it('a client that leaves while held gives its token back', async () => {
    live.backend = await startBackend();
    const events = limiterEvents();
    live.gateway = await startGateway(
      `upstreams:
  app:
    backends: [ { url: ${live.backend.url} } ]
rateLimits:
  q: { key: route, capacity: 1, refill: 1/s, mode: queue, maxWait: 3s }
routes:
  - { match: { path: / }, upstream: app, rateLimit: q }
`,
      { observer: events.observer },
    );
    expect((await hit(`${live.gateway.url}/x`)).status).toBe(200);
    // held for ~1 s; the client gives up after 200 ms
    await expect(fetch(`${live.gateway.url}/x`, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(events.decisions.at(-1)).toEqual({ policy: 'q', result: 'queued' });
    await sleep(1_100); // its hold ends: the token is refunded instead of used
    expect(live.backend.received).toHaveLength(1);
    // refunded: ~1.3 tokens now, so the next request goes at once (without the refund the
    // bucket would hold ~0.3 and the request would be queued for ~700 ms). The limiter's own
    // decision says which: 'allowed' is a wait of 0, 'queued' any wait — no wall-clock bound needed
    const next = await hit(`${live.gateway.url}/x`);
    expect(next.status).toBe(200);
    expect(events.decisions.at(-1)).toEqual({ policy: 'q', result: 'allowed' });
  });
});

describe('JWKS from a URL', () => {
  it('fetches the key set and verifies tokens against it', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'r1', alg: 'RS256', use: 'sig' }] });
    let fetched = 0;
    server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(jwks);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    live.backend = await startBackend();
    live.gateway = await startGateway(`upstreams:
  app:
    backends: [ { url: ${live.backend.url} } ]
rateLimits:
  per-user: { key: jwt:sub, capacity: 1, refill: 1/h, jwt: { jwks: "${jwksUrl}", audience: spillway } }
routes:
  - { match: { path: / }, upstream: app, rateLimit: per-user }
`);
    const token = (sub: string, key = privateKey) =>
      new SignJWT({ sub }).setProtectedHeader({ alg: 'RS256', kid: 'r1' }).setAudience('spillway').setExpirationTime('5m').sign(key);
    const auth = async (sub: string) => ({ authorization: `Bearer ${await token(sub)}` });
    expect((await hit(`${live.gateway.url}/x`, await auth('ann'))).status).toBe(200);
    expect((await hit(`${live.gateway.url}/x`, await auth('ann'))).status).toBe(429);
    expect((await hit(`${live.gateway.url}/x`, await auth('ben'))).status).toBe(200);
    const other = await generateKeyPair('RS256');
    expect((await hit(`${live.gateway.url}/x`, { authorization: `Bearer ${await token('cat', other.privateKey)}` })).status).toBe(401);
    expect(fetched).toBe(1); // cached
  });
});
