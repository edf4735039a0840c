// Route `auth.apiKeys.redisSet`: API keys in a Redis set, read in the background every `refresh`
// over the gateway's `redis` connection. Changes take effect within one refresh; Redis down keeps
// the last good read; a set never read refuses its keys while config keys still work.

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from './helpers/backend.js';
import { parseConfigText } from '../src/config/load.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { hit } from './helpers/ratelimit.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { waitUntil } from './helpers/wait.js';

const live = perTest();
let backend: TestBackend;
const extra: TestRedis[] = [];
const clients: Redis[] = [];

beforeAll(async () => {
  backend = await startBackend();
});
afterAll(async () => {
  await backend.close();
  for (const client of clients) client.disconnect();
  await Promise.all(extra.map((redis) => redis.stop()));
});

async function ownRedis(): Promise<{ redis: TestRedis; client: Redis }> {
  const redis = await startRedis();
  extra.push(redis);
  // Commands queue while the test restarts the server, so a SADD right after restart() lands.
  const client = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: () => 20 });
  client.on('error', () => {});
  clients.push(client);
  return { redis, client };
}

function yaml(redisUrl: string, apiKeys: string, route = '', top = ''): string {
  return `redis: { url: ${redisUrl} }
${top}
upstreams: { app: { backends: [ { url: ${backend.url} } ] } }
routes:
  - match: { path: / }
    upstream: app
    auth: { apiKeys: { ${apiKeys} } }
${route}`;
}

const status = (url: string, key: string) => hit(`${url}/x`, { 'x-api-key': key }).then((r) => r.status);

describe('auth.apiKeys.redisSet', () => {
  it('a key added to the set is accepted within one refresh; a removed one is refused after the next', async () => {
    const { redis, client } = await ownRedis();
    await client.sadd('spillway:api-keys', 'k-alice-0123456789');
    live.gateway = await startGateway(yaml(redis.url, 'redisSet: "spillway:api-keys", refresh: 300ms, keys: [ k-config-0123456789 ]'));
    const url = live.gateway.url;
    expect(await status(url, 'k-alice-0123456789')).toBe(200);
    expect(await status(url, 'k-config-0123456789')).toBe(200);
    expect(await status(url, 'k-bob-0123456789')).toBe(401);

    await client.sadd('spillway:api-keys', 'k-bob-0123456789');
    const added = Date.now();
    await waitUntil(async () => (await status(url, 'k-bob-0123456789')) === 200, { interval: 20, timeout: 5_000 });
    // one refresh (300ms) plus a wide margin for a busy machine
    const addedAfter = Date.now() - added;
    console.info(`redisSet: a new key was accepted after ${addedAfter}ms (refresh 300ms)`);
    expect(addedAfter).toBeLessThan(1_500);

    await client.srem('spillway:api-keys', 'k-alice-0123456789');
    const removed = Date.now();
    await waitUntil(async () => (await status(url, 'k-alice-0123456789')) === 401, { interval: 20, timeout: 5_000 });
    const removedAfter = Date.now() - removed;
    console.info(`redisSet: a removed key was refused after ${removedAfter}ms (refresh 300ms)`);
    expect(removedAfter).toBeLessThan(1_500);
    // the set emptied (the key deleted): its keys are refused, config keys still pass
    await client.del('spillway:api-keys');
    await waitUntil(async () => (await status(url, 'k-bob-0123456789')) === 401, { interval: 20, timeout: 5_000 });
    expect(await status(url, 'k-config-0123456789')).toBe(200);
  });

  it('a reload keeps the reader (no refusal gap); one without redisSet stops consulting it', async () => {
    const { redis, client } = await ownRedis();
    await client.sadd('keys', 'k-alice-0123456789');
    const text = yaml(redis.url, 'redisSet: keys, refresh: 1h');
    live.gateway = await startGateway(text);
    const { gateway, url } = live.gateway;
    expect(await status(url, 'k-alice-0123456789')).toBe(200);
    // gone from Redis, but refresh is 1h: only the kept reader's last read still holds the key
    await client.srem('keys', 'k-alice-0123456789');
    const { config } = parseConfigText(text, 'test.yaml', {});
    gateway.apply(config, 'test.yaml');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await status(url, 'k-alice-0123456789')).toBe(200);
    const { config: withoutSet } = parseConfigText(yaml(redis.url, 'keys: [ k-config-0123456789 ]'), 'test.yaml', {});
    gateway.apply(withoutSet, 'test.yaml');
    expect(await status(url, 'k-alice-0123456789')).toBe(401);
    expect(await status(url, 'k-config-0123456789')).toBe(200);
  });

  it('the id of an "<id> <key>" member is the rate-limit key', async () => {
    const { redis, client } = await ownRedis();
    await client.sadd('keys', 'team-a k-one-0123456789', 'team-a k-two-0123456789', 'team-b k-three-0123456789');
    live.gateway = await startGateway(
      yaml(
        redis.url,
        'redisSet: keys, refresh: 1s',
        '    rateLimit: per-client',
        'rateLimits:\n  per-client: { capacity: 2, refill: 1/h, store: memory }',
      ),
    );
    const url = live.gateway.url;
    expect([await status(url, 'k-one-0123456789'), await status(url, 'k-two-0123456789'), await status(url, 'k-one-0123456789')]).toEqual([
      200, 200, 429,
    ]);
    expect(await status(url, 'k-three-0123456789')).toBe(200);
    expect(await status(url, 'team-a')).toBe(401);
  });

  it('Redis down: the last good read stays in use (logged once); back: the set is read again', async () => {
    const { redis, client } = await ownRedis();
    await client.sadd('keys', 'k-alice-0123456789');
    live.gateway = await startGateway(yaml(redis.url, 'redisSet: keys, refresh: 100ms'));
    const { url, logs } = live.gateway;
    expect(await status(url, 'k-alice-0123456789')).toBe(200);

    await redis.kill();
    // many refreshes while Redis is down
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(await status(url, 'k-alice-0123456789')).toBe(200);
    expect(await status(url, 'k-bob-0123456789')).toBe(401);
    const outages = logs.events('auth.key_set_unavailable');
    expect(outages).toHaveLength(1);
    expect(String(outages[0]!.msg)).toContain('the 1 keys of its last read stay in use');

    // back, empty (nothing kept on disk), then a new key: the set is read again
    await redis.restart();
    await client.sadd('keys', 'k-bob-0123456789');
    await waitUntil(async () => (await status(url, 'k-bob-0123456789')) === 200, { interval: 20, timeout: 5_000 });
    expect(await status(url, 'k-alice-0123456789')).toBe(401);
    expect(logs.events('auth.key_set_read')).toHaveLength(1);
    expect(JSON.stringify(logs.lines)).not.toContain('k-alice-0123456789');
  });

  it('a set never read (Redis down at start): its keys are refused, config keys work, until Redis answers', async () => {
    const { redis, client } = await ownRedis();
    await redis.kill();
    live.gateway = await startGateway(yaml(redis.url, 'redisSet: keys, refresh: 200ms, keys: [ k-config-0123456789 ]'));
    const { url, logs } = live.gateway;
    expect(await status(url, 'k-config-0123456789')).toBe(200);
    const refused = await hit(`${url}/x`, { 'x-api-key': 'k-alice-0123456789' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    const outages = logs.events('auth.key_set_unavailable');
    expect(outages).toHaveLength(1);
    expect(String(outages[0]!.msg)).toContain('never read');

    await redis.restart();
    await client.sadd('keys', 'k-alice-0123456789');
    await waitUntil(async () => (await status(url, 'k-alice-0123456789')) === 200, { interval: 20, timeout: 5_000 });
    expect(logs.events('auth.key_set_unavailable')).toHaveLength(1);
  });

  it('keys of the set never appear in /admin/config (the set name does)', async () => {
    const { redis, client } = await ownRedis();
    await client.sadd('spillway:api-keys', 'alice k-alice-0123456789');
    live.gateway = await startGateway(yaml(redis.url, 'redisSet: "spillway:api-keys"'));
    expect(await status(live.gateway.url, 'k-alice-0123456789')).toBe(200);
    const view = await (await fetch(`${live.gateway.adminUrl}/admin/config`)).text();
    expect(view).toContain('spillway:api-keys');
    expect(view).not.toContain('k-alice-0123456789');
  });

  it('redisSet without a top-level redis is a config error at file:line', async () => {
    const { issuesOf } = await import('./helpers/config.js');
    const issues = issuesOf(`upstreams: { app: { backends: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - match: { path: / }
    upstream: app
    auth:
      apiKeys:
        redisSet: spillway:api-keys
`);
    expect(issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^7 routes\[0\]\.auth\.apiKeys\.redisSet: apiKeys\.redisSet needs the top-level `redis` connection/),
    ]);
  });
});
