// Token budgets per client, driven by the official openai client against simulated OpenAI-style
// backends (JSON and SSE, with usage): tokens are counted from usage, a request whose estimate
// exceeds what is left never reaches a backend, the bucket refills, the quota answers 403.

import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { startOpenAiBackend, type OpenAiBackend } from './helpers/openai-backend.js';
import { scrape } from './helpers/telemetry.js';
import { waitUntil } from './helpers/wait.js';

let gateway: TestGateway | undefined;
let backends: OpenAiBackend[] = [];
afterEach(async () => {
  await closeAll(...backends, ...(gateway ? [gateway] : []));
  gateway = undefined;
  backends = [];
});

function client(key = 'client-a'): OpenAI {
  return new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway!.url}/v1`, maxRetries: 0, defaultHeaders: { 'x-api-key': key } });
}

async function tokenGateway(policy: string, backend: OpenAiBackend): Promise<TestGateway> {
  return startGateway(`
upstreams:
  llm:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  tokens: ${policy}
routes:
  - name: chat
    match: { path: /v1 }
    upstream: llm
    rateLimit: tokens
`);
}

const ask = (c: OpenAI, extra: Record<string, unknown> = {}) =>
  c.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hi' }],
    ...extra,
  } as never) as unknown as Promise<OpenAI.Chat.Completions.ChatCompletion>;

async function streamed(c: OpenAI): Promise<{ text: string; chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] }> {
  const stream = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], stream: true });
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  let text = '';
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  return { text, chunks };
}

describe('unit: tokens policies', () => {
  it('refuses 429 once 1,000 tokens were used (counted from usage, JSON and SSE) and lets the client on as the bucket refills', async () => {
    const backend = await startOpenAiBackend({ promptTokens: 100, completionTokens: 150 });
    backends.push(backend);
    gateway = await tokenGateway('{ key: header:x-api-key, unit: tokens, capacity: 1000, refill: 1000/m }', backend);
    const c = client();

    const first = await ask(c).then((r) => r);
    expect(first.usage?.total_tokens).toBe(250);
    await ask(c);
    // Streamed without stream_options: the gateway asks for usage and takes the extra chunk out.
    const s1 = await streamed(c);
    expect(s1.text).toBe(' word0 word1 word2 word3 word4');
    expect(s1.chunks.some((chunk) => chunk.usage)).toBe(false);
    expect(JSON.parse(backend.received.at(-1)!.body).stream_options).toEqual({ include_usage: true });
    // Streamed with usage asked by the client: it gets the usage chunk.
    const stream = await c.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: number | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage.total_tokens;
    expect(usage).toBe(250);

    // 4 × 250 = 1,000 tokens used: the next request's estimate is not covered.
    const served = backend.received.length;
    const refused = await ask(c).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const error = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.status).toBe(429);
    expect(Number(error.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(error.headers?.get('ratelimit')).toMatch(/^"tokens";r=\d+;t=\d+$/);
    expect(error.headers?.get('x-ratelimit-remaining')).toBeNull();
    expect(backend.received.length).toBe(served);

    // 1000/m refills ~17 tokens a second: enough for this prompt's estimate (~12) within a few seconds.
    await waitUntil(
      async () =>
        await ask(c).then(
          () => true,
          () => false,
        ),
      { timeout: 5_000, interval: 250 },
    );
    expect(backend.received.length).toBe(served + 1);
  });

  it('refuses a request whose estimate exceeds what is left, without a backend call, and reports tokens apart from requests', async () => {
    const backend = await startOpenAiBackend({ promptTokens: 10, completionTokens: 20 });
    backends.push(backend);
    gateway = await startGateway(`
upstreams:
  llm:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  requests: { key: header:x-api-key, capacity: 100, refill: 100/m }
  tokens: { key: header:x-api-key, unit: tokens, capacity: 1000, refill: 1000/m }
routes:
  - name: chat
    match: { path: /v1 }
    upstream: llm
    rateLimit: [requests, tokens]
`);
    const c = client();
    const { response } = await c.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 100 })
      .withResponse();
    // Reserved: ~11 prompt + 100 max_tokens; 1000 - 111 left at answer time.
    const remainingTokens = Number(response.headers.get('x-ratelimit-remaining-tokens'));
    expect(remainingTokens).toBeGreaterThan(880);
    expect(remainingTokens).toBeLessThan(900);
    expect(response.headers.get('x-ratelimit-remaining')).toBe('99');
    expect(response.headers.get('ratelimit')).toMatch(/^"requests";r=99;t=\d+, "tokens";r=\d+;t=\d+$/);

    // Settled at 30: ~970 left. max_tokens 980 → estimate ~991 > what is left.
    const before = backend.received.length;
    const refused = await c.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 980 })
      .then(
        () => undefined,
        (error: unknown) => error as InstanceType<typeof OpenAI.APIError>,
      );
    expect(refused?.status).toBe(429);
    expect(backend.received.length).toBe(before);
    // The refusal gave the request count back too.
    const again = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }] }).withResponse();
    expect(again.response.headers.get('x-ratelimit-remaining')).toBe('98');
  });

  it('answers 403 client-quota-exceeded once the period quota is spent', async () => {
    const backend = await startOpenAiBackend({ promptTokens: 100, completionTokens: 150 });
    backends.push(backend);
    gateway = await tokenGateway(
      '{ key: header:x-api-key, unit: tokens, capacity: 100000, refill: 100000/m, quota: { limit: 500, period: day } }',
      backend,
    );
    const c = client();
    await ask(c);
    await ask(c);
    const refused = await ask(c).then(
      () => undefined,
      (error: unknown) => error as InstanceType<typeof OpenAI.APIError>,
    );
    expect(refused?.status).toBe(403);
    const raw = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'client-a' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(raw.status).toBe(403);
    expect(raw.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await raw.json()) as { type: string }).type).toMatch(/client-quota-exceeded$/);
    expect(Number(refused?.headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(backend.received.length).toBe(2);
    // Another client has its own quota.
    await ask(client('client-b'));
  });

  it('caps requests in flight per client (maxInFlight): one more is refused at once, and the slot comes back', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const backend = await startOpenAiBackend({ promptTokens: 1, completionTokens: 1, hold: () => held });
    backends.push(backend);
    gateway = await tokenGateway('{ key: header:x-api-key, capacity: 100, refill: 100/s, maxInFlight: 2 }', backend);
    const c = client();
    const slow = [ask(c), ask(c)];
    await waitUntil(() => backend.received.length === 2);
    const third = await ask(c).then(
      () => 200,
      (error: unknown) => (error as InstanceType<typeof OpenAI.APIError>).status,
    );
    expect(third).toBe(429);
    release();
    await Promise.all(slow);
    await ask(c);
  });

  it('counts tokens in and out per route, backend, model and client in Prometheus, and the request log line carries them', async () => {
    const backend = await startOpenAiBackend({ name: 'b1', promptTokens: 100, completionTokens: 150 });
    backends.push(backend);
    gateway = await startGateway(`
log: { requests: { sample: 1 } }
upstreams:
  llm:
    backends: [ { url: ${backend.url}, name: east } ]
rateLimits:
  tokens: { key: header:x-api-key, unit: tokens, capacity: 100000, refill: 100000/m }
routes:
  - name: chat
    match: { path: /v1 }
    upstream: llm
    rateLimit: tokens
`);
    await ask(client('key-1'));
    await streamed(client('key-2'));
    await waitUntil(() => gateway!.logs.events('request').length === 2);
    const metrics = await scrape(gateway.adminUrl);
    const labels = { route: 'chat', upstream: 'llm', backend: 'east', model: 'gpt-4o-mini' };
    expect(metrics.value('spillway_llm_tokens_total', { ...labels, direction: 'in' })).toBe(200);
    expect(metrics.value('spillway_llm_tokens_total', { ...labels, direction: 'out' })).toBe(300);
    const clients = metrics.all('spillway_llm_client_tokens_total');
    expect(Object.keys(clients)).toHaveLength(4);
    for (const key of Object.keys(clients)) expect(key).toMatch(/client="[0-9a-f]{12}"/);
    expect(metrics.text).not.toContain('key-1');
    const lines = gateway.logs.events('request');
    expect(lines.map((line) => [line.promptTokens, line.completionTokens, line.tokensFrom, line.model])).toEqual([
      [100, 150, 'usage', 'gpt-4o-mini'],
      [100, 150, 'usage', 'gpt-4o-mini'],
    ]);
  });

  it('a cached answer (cache keyBy: body) costs no tokens and gives its in-flight slot back', async () => {
    const backend = await startOpenAiBackend({ promptTokens: 100, completionTokens: 150 });
    backends.push(backend);
    gateway = await startGateway(`
upstreams:
  llm:
    backends: [ { url: ${backend.url} } ]
rateLimits:
  tokens: { key: header:x-api-key, unit: tokens, capacity: 1000, refill: 1/h, maxInFlight: 1 }
routes:
  - name: chat
    match: { path: /v1 }
    upstream: llm
    rateLimit: tokens
    cache: { keyBy: body, defaultTtl: 10m }
`);
    const c = client();
    const remaining = async () =>
      Number(
        (
          await c.chat.completions
            .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], temperature: 0 })
            .withResponse()
        ).response.headers.get('x-ratelimit-remaining-tokens'),
      );
    await remaining();
    // Hits: the backend is not called, the estimate reserved for each comes back, the slot too
    // (maxInFlight 1: a slot kept would refuse the next request).
    // 80 hits reserve ~12 tokens each: ~960 > the 750 left, refused if hits kept their estimates.
    for (let i = 0; i < 80; i++) await remaining();
    expect(backend.received).toHaveLength(1);
  });
});
