// Steer before the 429: a backend that announced its budget is spent (remaining requests 0, or
// remaining tokens below the request's estimate) gets no request until its announced reset; the
// pool's next backend takes it, and the spent backend never answers 429. Declared rpm steers the
// same way for a backend that sends no headers.

import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { startOpenAiBackend, type OpenAiBackend } from './helpers/openai-backend.js';
import { startRedis } from './helpers/redis.js';

let gateway: TestGateway | undefined;
let backends: OpenAiBackend[] = [];
afterEach(async () => {
  await closeAll(...backends, ...(gateway ? [gateway] : []));
  gateway = undefined;
  backends = [];
});

async function pool(primary: OpenAiBackend, secondary: OpenAiBackend, throttle = '', primaryExtra = ''): Promise<OpenAI> {
  gateway = await startGateway(`
upstreams:
  llm:
    ${throttle}
    backends:
      - { url: ${primary.url}, priority: 1${primaryExtra} }
      - { url: ${secondary.url}, priority: 2 }
routes:
  - { name: chat, match: { path: /v1 }, upstream: llm }
`);
  return new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway.url}/v1`, maxRetries: 0 });
}

const ask = (c: OpenAI, extra: Record<string, unknown> = {}) =>
  c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], ...extra } as never).withResponse();

async function streamFrom(c: OpenAI): Promise<string | null> {
  const { data, response } = await c.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], stream: true })
    .withResponse();
  for await (const _ of data) {
    // drain
  }
  return response.headers.get('x-backend');
}

describe('predictive steering (throttle.predictive, on by default)', () => {
  it('avoids a backend whose remaining requests are 0 before it answers 429 (JSON and SSE answers)', async () => {
    const primary = await startOpenAiBackend({ name: 'primary', requestLimit: 3 });
    const secondary = await startOpenAiBackend({ name: 'secondary' });
    backends.push(primary, secondary);
    const c = await pool(primary, secondary);
    expect((await ask(c)).response.headers.get('x-backend')).toBe('primary');
    expect(await streamFrom(c)).toBe('primary');
    const third = await ask(c);
    expect(third.response.headers.get('x-backend')).toBe('primary');
    expect(third.response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // Announced 0 left: the next requests go to the secondary without touching the primary.
    expect((await ask(c)).response.headers.get('x-backend')).toBe('secondary');
    expect(await streamFrom(c)).toBe('secondary');
    expect(primary.received).toHaveLength(3);
    expect(primary.throttled).toBe(0);
    const status = JSON.stringify(await (await fetch(`${gateway!.adminUrl}/admin/upstreams`)).json());
    expect(status).toContain('"source":"predictive:x-ratelimit-remaining-requests"');
    // The learner's view: 0 requests left of 3, until the backend's reset.
    expect(status).toMatch(/"capacity":\{"requests":\{"remaining":0,"limit":3,"resetInMs":\d+\}/);
  });

  it('without steering (predictive: false) the spent backend is asked and answers 429 first', async () => {
    const primary = await startOpenAiBackend({ name: 'primary', requestLimit: 3 });
    const secondary = await startOpenAiBackend({ name: 'secondary' });
    backends.push(primary, secondary);
    const c = await pool(primary, secondary, 'throttle: { predictive: false }');
    for (let i = 0; i < 3; i++) await ask(c);
    expect((await ask(c)).response.headers.get('x-backend')).toBe('secondary');
    expect(primary.throttled).toBe(1);
  });

  it("avoids a backend whose remaining tokens are below this request's estimate", async () => {
    const primary = await startOpenAiBackend({ name: 'primary', tokenLimit: 100, promptTokens: 10, completionTokens: 20 });
    const secondary = await startOpenAiBackend({ name: 'secondary' });
    backends.push(primary, secondary);
    const c = await pool(primary, secondary);
    for (let i = 0; i < 3; i++) expect((await ask(c)).response.headers.get('x-backend')).toBe('primary');
    // 10 tokens left; this request may use ~11 + 50.
    expect((await ask(c, { max_tokens: 50 })).response.headers.get('x-backend')).toBe('secondary');
    expect(primary.received).toHaveLength(3);
    expect(primary.throttled).toBe(0);
  });

  it('steers by a declared rpm for a backend that sends no headers', async () => {
    const primary = await startOpenAiBackend({ name: 'primary' });
    const secondary = await startOpenAiBackend({ name: 'secondary' });
    backends.push(primary, secondary);
    const c = await pool(primary, secondary, '', ', rpm: 2');
    const seen: Array<string | null> = [];
    for (let i = 0; i < 4; i++) seen.push((await ask(c)).response.headers.get('x-backend'));
    expect(seen).toEqual(['primary', 'primary', 'secondary', 'secondary']);
  });

  it("with Redis, two gateways count a declared rpm together (each acts on the other's sends from its next request)", async () => {
    const redis = await startRedis();
    const primary = await startOpenAiBackend({ name: 'primary' });
    const secondary = await startOpenAiBackend({ name: 'secondary' });
    backends.push(primary, secondary);
    const yaml = `
redis: { url: ${redis.url}, keyPrefix: "steer:" }
upstreams:
  llm:
    backends:
      - { url: ${primary.url}, priority: 1, rpm: 4, name: primary }
      - { url: ${secondary.url}, priority: 2, name: secondary }
routes:
  - { name: chat, match: { path: /v1 }, upstream: llm }
`;
    const second = await startGateway(yaml);
    try {
      gateway = await startGateway(yaml);
      const clients = [gateway, second].map((g) => new OpenAI({ apiKey: 'sk-test', baseURL: `${g.url}/v1`, maxRetries: 0 }));
      const seen: Array<string | null> = [];
      for (let i = 0; i < 8; i++) seen.push((await ask(clients[i % 2]!)).response.headers.get('x-backend'));
      // Alone, each process would send 4 (8 in all) to the primary; together they send 4, plus
      // about one each on a count whose reply it had not read yet (two on a very busy machine).
      expect(primary.received.length).toBeGreaterThanOrEqual(4);
      expect(primary.received.length).toBeLessThanOrEqual(6);
      expect(seen.at(-1)).toBe('secondary');
    } finally {
      await second.close();
      await redis.stop();
    }
  });
});
