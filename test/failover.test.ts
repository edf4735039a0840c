import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';

let gateway: TestGateway | undefined;
let backends: TestBackend[] = [];
afterEach(async () => {
  await closeAll(gateway, ...backends);
  gateway = undefined;
  backends = [];
});

function pool(urls: Array<{ url: string; priority?: number; weight?: number }>, extra = ''): string {
  return `upstreams:
  llm:
    backends:
${urls.map((b) => `      - { url: ${b.url}, priority: ${b.priority ?? 1}, weight: ${b.weight ?? 1} }`).join('\n')}
${extra}
routes:
  - match: { path: /v1/ }
    upstream: llm
`;
}

describe('throttled backend → immediate failover', () => {
  it('serves the request from the next backend in the same call and leaves the throttled one alone until its cooldown ends', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '400', 'retry-after': '1' });
    const healthy = await startBackend(undefined, 'healthy');
    backends = [throttling, healthy];
    gateway = await startGateway(pool([{ url: throttling.url }, { url: healthy.url, priority: 2 }]));

    const first = await fetch(`${gateway.url}/v1/chat`, { method: 'POST', body: '{"q":1}' });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ backend: 'healthy' });
    expect(throttling.received).toHaveLength(1);
    expect(healthy.received[0]!.body).toBe('{"q":1}');

    for (let i = 0; i < 5; i++) expect((await fetch(`${gateway.url}/v1/chat`)).status).toBe(200);
    expect(throttling.received).toHaveLength(1);

    await new Promise((resolve) => setTimeout(resolve, 450));
    await fetch(`${gateway.url}/v1/chat`);
    expect(throttling.received).toHaveLength(2);
  });
});
