// Idempotency-Key on a route: duplicates of a keyed POST get the first answer without a backend
// call; 409 while the first is in flight; 422 for the same key with another body; the key is
// shared by gateways on one Redis; the store failing is answered as configured.

import { describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { delayed, served, startSwitchable, status, type Behaviour } from './helpers/resilience.js';

let redis: TestRedis | undefined;
let extraGateway: TestGateway | undefined;
const live = perTest(async () => {
  await extraGateway?.close();
  extraGateway = undefined;
  await redis?.stop();
  redis = undefined;
});

/** Answers every POST with a body unique to that call (so a replay is recognisable). */
const unique: Behaviour = (req, res, body) => {
  const payload = JSON.stringify({ call: Math.random().toString(36).slice(2), body, url: req.url });
  res.writeHead(201, { 'content-type': 'application/json', 'x-order': 'created' });
  res.end(payload);
};

const config = (url: string, idempotency = '{}', top = '') => `${top}upstreams:
  orders:
    backends: [ { url: ${url} } ]
routes:
  - upstream: orders
    idempotency: ${idempotency}
`;

async function post(base: string, key: string | undefined, body = 'charge 10', path = '/pay', headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain', ...(key === undefined ? {} : { 'idempotency-key': key }), ...headers },
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('Idempotency-Key', () => {
  it('a duplicate POST gets the first answer byte for byte, marked Idempotent-Replayed, without a backend call', async () => {
    const backend = await startSwitchable('b', unique);
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url));
    const first = await post(live.gateway.url, 'k-1');
    const second = await post(live.gateway.url, 'k-1');
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body.equals(first.body)).toBe(true);
    expect(second.headers.get('x-order')).toBe('created');
    expect(second.headers.get('content-type')).toBe('application/json');
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(served(backend)).toBe(1);
    // Another key, another path, no key: each its own call.
    await post(live.gateway.url, 'k-2');
    await post(live.gateway.url, 'k-1', 'charge 10', '/other');
    await post(live.gateway.url, undefined);
    await post(live.gateway.url, undefined);
    expect(served(backend)).toBe(5);
  });

  it('50 concurrent duplicates: one backend call, the others 409 (with Retry-After) or the replay', async () => {
    const backend = await startSwitchable('b', delayed(800, unique));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url));
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(live.gateway!.url, 'same')));
    expect(served(backend)).toBe(1);
    const first = answers.find((a) => a.status === 201 && a.headers.get('idempotent-replayed') === null)!;
    expect(first).toBeDefined();
    for (const answer of answers) {
      if (answer.status === 409) {
        expect(answer.headers.get('retry-after')).toBe('1');
        expect(JSON.parse(answer.body.toString())).toMatchObject({ type: 'urn:spillway:problem:idempotency-key-in-use' });
      } else {
        expect(answer.status).toBe(201);
        expect(answer.body.equals(first.body)).toBe(true);
      }
    }
    expect(answers.filter((a) => a.status === 409).length).toBeGreaterThan(25);
    const later = await post(live.gateway.url, 'same');
    expect(later.body.equals(first.body)).toBe(true);
    expect(served(backend)).toBe(1);
  });

  it('the same key with a different body → 422, nothing sent', async () => {
    const backend = await startSwitchable('b', unique);
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url));
    expect((await post(live.gateway.url, 'k', 'charge 10')).status).toBe(201);
    const reused = await post(live.gateway.url, 'k', 'charge 99');
    expect(reused.status).toBe(422);
    expect(reused.headers.get('content-type')).toBe('application/problem+json');
    expect(JSON.parse(reused.body.toString())).toMatchObject({ type: 'urn:spillway:problem:idempotency-key-reused' });
    expect(served(backend)).toBe(1);
  });

  it("the gateway's own answers and backend 503s are not stored: the key is released and the retry goes through", async () => {
    const backend = await startSwitchable('b', status(503));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url));
    expect((await post(live.gateway.url, 'k')).status).toBe(503);
    backend.behaviour = (_req, res) => void res.socket!.destroy();
    expect((await post(live.gateway.url, 'k')).status).toBe(502);
    backend.behaviour = unique;
    const done = await post(live.gateway.url, 'k');
    expect(done.status).toBe(201);
    expect((await post(live.gateway.url, 'k')).body.equals(done.body)).toBe(true);
    expect(served(backend)).toBe(3);
  });

  it('an answer larger than maxBody is passed through and not stored', async () => {
    const big = 'x'.repeat(5_000);
    const backend = await startSwitchable('b', (_req, res) => void res.writeHead(200).end(big));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, '{ maxBody: 1kb }'));
    expect((await post(live.gateway.url, 'k')).body.toString()).toBe(big);
    expect((await post(live.gateway.url, 'k')).headers.get('idempotent-replayed')).toBeNull();
    expect(served(backend)).toBe(2);
  });

  it('scopeBy: the same key of two clients is two keys; a request without the scope is refused', async () => {
    const backend = await startSwitchable('b', unique);
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, '{ scopeBy: header:x-api-key }'));
    await post(live.gateway.url, 'k', 'x', '/pay', { 'x-api-key': 'alice' });
    await post(live.gateway.url, 'k', 'x', '/pay', { 'x-api-key': 'bob' });
    expect(served(backend)).toBe(2);
    expect((await post(live.gateway.url, 'k', 'x', '/pay', { 'x-api-key': 'alice' })).headers.get('idempotent-replayed')).toBe('true');
    expect((await post(live.gateway.url, 'k', 'x')).status).toBe(400);
  });

  it('two gateways on one Redis share keys', async () => {
    redis = await startRedis();
    const backend = await startSwitchable('b', delayed(200, unique));
    live.backends = [backend];
    const yaml = config(backend.url, '{}', `redis: { url: ${redis.url} }\n`);
    live.gateway = await startGateway(yaml);
    extraGateway = await startGateway(yaml);
    const [a, b] = await Promise.all([post(live.gateway.url, 'shared'), post(extraGateway.url, 'shared')]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    const replayed = await post(extraGateway.url, 'shared');
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body.equals((a.status === 201 ? a : b).body)).toBe(true);
    expect(served(backend)).toBe(1);
  });

  it('store unavailable: closed answers 503 with Retry-After and sends nothing; open forwards without protection', async () => {
    redis = await startRedis();
    const backend = await startSwitchable('b', unique);
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, '{}', `redis: { url: ${redis.url} }\n`));
    extraGateway = await startGateway(config(backend.url, '{ onStoreError: open }', `redis: { url: ${redis.url} }\n`));
    expect((await post(live.gateway.url, 'k')).status).toBe(201);
    await redis.kill();
    const closed = await post(live.gateway.url, 'k2');
    expect(closed.status).toBe(503);
    expect(closed.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(closed.body.toString())).toMatchObject({ type: 'urn:spillway:problem:idempotency-store-unavailable' });
    expect(served(backend)).toBe(1);
    expect((await post(extraGateway.url, 'k3')).status).toBe(201);
    expect((await post(extraGateway.url, 'k3')).status).toBe(201);
    expect(served(backend)).toBe(3);
  });
});
