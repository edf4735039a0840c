// Route by model: one /v1/chat/completions endpoint fans into per-model pools by a JSON body
// field; bodies that are not JSON (or too large) fall through; one pool mixes an OpenAI-style
// backend (its own model name) and an Azure OpenAI deployment (path rewritten).

import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { unreachableRuleWarnings } from '../src/config/unreachable-rules.js';
import { parseConfigText } from '../src/config/load.js';
import { closeAll } from './helpers/backend.js';
import { expectCheckPasses } from './helpers/config.js';
import { ROOT, startGateway, type TestGateway } from './helpers/gateway.js';
import { startOpenAiBackend, type OpenAiBackend } from './helpers/openai-backend.js';

let gateway: TestGateway | undefined;
let backends: OpenAiBackend[] = [];
afterEach(async () => {
  await closeAll(...backends, ...(gateway ? [gateway] : []));
  gateway = undefined;
  backends = [];
});

describe('match: { body: … }', () => {
  it('sends each model to its own pool, and a non-JSON or too-large body falls through to the next rule', async () => {
    const mini = await startOpenAiBackend({ name: 'mini' });
    const big = await startOpenAiBackend({ name: 'big' });
    const other = await startOpenAiBackend({ name: 'other' });
    backends.push(mini, big, other);
    gateway = await startGateway(`
upstreams:
  mini: { backends: [ { url: ${mini.url} } ], failover: { replayBuffer: 4kb } }
  big: { backends: [ { url: ${big.url} } ], failover: { replayBuffer: 4kb } }
  other: { backends: [ { url: ${other.url} } ], failover: { replayBuffer: 4kb } }
routes:
  - name: mini
    match: { path: /v1/chat, body: { model: { regex: "^gpt-4o-mini" } } }
    upstream: mini
  - name: big
    match: { path: /v1/chat, body: { model: gpt-4o, metadata.tier: gold } }
    upstream: big
  - name: rest
    match: { path: /v1 }
    upstream: other
`);
    const c = new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const send = (body: Record<string, unknown>) =>
      c.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], ...body } as never).withResponse();
    expect((await send({ model: 'gpt-4o-mini-2024-07-18' })).response.headers.get('x-backend')).toBe('mini');
    expect((await send({ model: 'gpt-4o', metadata: { tier: 'gold' } })).response.headers.get('x-backend')).toBe('big');
    expect((await send({ model: 'gpt-4o', metadata: { tier: 'silver' } })).response.headers.get('x-backend')).toBe('other');
    // The body the backend got is the client's, whole.
    expect(JSON.parse(big.received[0]!.body)).toMatchObject({ model: 'gpt-4o', metadata: { tier: 'gold' } });

    const post = (body: string, type = 'application/json') =>
      fetch(`${gateway!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': type }, body });
    const notJson = await post('model=gpt-4o-mini', 'application/x-www-form-urlencoded');
    expect(notJson.headers.get('x-backend')).toBe('other');
    expect(other.received.at(-1)!.body).toBe('model=gpt-4o-mini');
    const tooLarge = await post(JSON.stringify({ model: 'gpt-4o-mini', pad: 'x'.repeat(8_000) }));
    expect(tooLarge.status).toBe(200);
    expect(tooLarge.headers.get('x-backend')).toBe('other');
    expect(JSON.parse(other.received.at(-1)!.body).pad).toHaveLength(8_000);
    const array = await post('[1,2]');
    expect(array.headers.get('x-backend')).toBe('other');
    // A GET without a body never matches a body rule.
    expect((await fetch(`${gateway.url}/v1/models`)).headers.get('x-backend')).toBe('other');
  });

  it('one pool mixes an OpenAI-style backend (its model name) and an Azure deployment (its path)', async () => {
    const openai = await startOpenAiBackend({ name: 'openai' });
    const azure = await startOpenAiBackend({ name: 'azure' });
    backends.push(openai, azure);
    gateway = await startGateway(`
upstreams:
  gpt4o:
    balance: round-robin
    backends:
      - { url: ${openai.url}, model: gpt-4o-2024-11-20 }
      - { url: ${azure.url}, deployment: gpt4o-east, apiVersion: 2024-10-21, headers: { api-key: azure-key }, removeHeaders: [authorization] }
routes:
  - name: chat
    match: { path: /v1 }
    upstream: gpt4o
`);
    const c = new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    for (let i = 0; i < 2; i++) await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(openai.received).toHaveLength(1);
    expect(azure.received).toHaveLength(1);
    expect(openai.received[0]!.url).toBe('/v1/chat/completions');
    expect(JSON.parse(openai.received[0]!.body).model).toBe('gpt-4o-2024-11-20');
    expect(azure.received[0]!.url).toBe('/openai/deployments/gpt4o-east/chat/completions?api-version=2024-10-21');
    expect(JSON.parse(azure.received[0]!.body).model).toBe('gpt-4o');
    expect(azure.received[0]!.headers['api-key']).toBe('azure-key');
    expect(azure.received[0]!.headers.authorization).toBeUndefined();
  });

  it('the unreachable-rule check treats body conditions as narrowing', () => {
    const { config } = parseConfigText(
      `
upstreams: { a: { backends: [ { url: http://127.0.0.1:1 } ] } }
routes:
  - { name: mini, match: { path: /v1, body: { model: gpt-4o-mini } }, upstream: a }
  - { name: all, match: { path: /v1 }, upstream: a }
  - { name: mini-again, match: { path: /v1/chat, body: { model: gpt-4o-mini } }, upstream: a }
`,
      'x.yaml',
      {},
    );
    const warnings = unreachableRuleWarnings(config.routes);
    expect(warnings.map((w) => w.index)).toEqual([2]);
  });

  it('refuses a body field path that is not dotted names', () => {
    expect(() =>
      parseConfigText(
        'upstreams: { a: { backends: [ { url: http://127.0.0.1:1 } ] } }\nroutes: [ { match: { body: { "a..b": x } }, upstream: a } ]\n',
        'x.yaml',
        {},
      ),
    ).toThrow(/dotted path/);
  });
});

describe('config/llm.yaml', () => {
  it('passes spillway check with the keys in the environment', async () => {
    await expectCheckPasses(join(ROOT, 'config/llm.yaml'), {
      OPENAI_KEY: 'k1',
      EASTUS_KEY: 'k2',
      WESTUS_KEY: 'k3',
      APP_KEY: 'k4',
      BATCH_KEY: 'k5',
    });
  });
});
