// Two gateway processes on one real redis-server share a client's token bucket: tokens counted
// from usage on one process are gone on the other, estimates are reserved exactly under a
// concurrent burst, and a request whose estimate exceeds what is left reaches no backend.

import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, writeTempConfig, type CliGateway } from '../helpers/gateway.js';
import { startOpenAiBackend, type OpenAiBackend } from '../helpers/openai-backend.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
let backend: OpenAiBackend;
let clis: CliGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
  backend = await startOpenAiBackend({ promptTokens: 100, completionTokens: 150 });
  const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
redis: { url: ${redis.url}, onRedisError: closed, commandTimeout: 2s, hardTimeout: 5s }
upstreams:
  llm:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  tokens: { key: header:x-api-key, unit: tokens, capacity: 1000, refill: 1000/h }
routes:
  - { match: { path: /v1 }, upstream: llm, rateLimit: tokens }
`);
  clis = await Promise.all([0, 1].map(() => startCli(file)));
});
afterAll(async () => {
  await Promise.all(clis.map((cli) => cli.stop()));
  await backend.close();
  await redis.stop();
});

const clientOf = (cli: CliGateway, key: string) =>
  new OpenAI({ apiKey: 'sk-test', baseURL: `${cli.url}/v1`, maxRetries: 0, defaultHeaders: { 'x-api-key': key } });

const ask = (c: OpenAI, extra: Record<string, unknown> = {}) =>
  (
    c.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hi' }],
      ...extra,
    } as never) as Promise<unknown>
  ).then(
    () => 200,
    (error: unknown) => (error as { status?: number }).status ?? 0,
  );

describe('token buckets shared by two gateway processes through Redis', () => {
  it('usage settled on one process is spent on the other; the fifth request is refused without a backend call', async () => {
    const [a, b] = clis.map((cli) => clientOf(cli, 'shared'));
    expect(await ask(a!)).toBe(200);
    expect(await ask(b!)).toBe(200);
    // Streamed, without include_usage: the gateway asks for it and settles from it.
    const stream = await b!.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hi' }],
      stream: true,
    });
    for await (const _ of stream) {
      // drain
    }
    expect(await ask(a!)).toBe(200);
    const calls = backend.received.length;
    expect(await ask(b!)).toBe(429);
    expect(await ask(a!)).toBe(429);
    expect(backend.received.length).toBe(calls);
  });

  it('a concurrent burst over both processes reserves estimates exactly: at most what the bucket holds goes out', async () => {
    const clients = clis.map((cli) => clientOf(cli, 'burst'));
    // Each request reserves ~11 prompt + 200 max_tokens = ~211: 4 fit in 1,000, never 5.
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(clients[i % 2]!, { max_tokens: 200 })));
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBe(4);
    expect(statuses.filter((s) => s === 429).length).toBe(36);
  });
});
