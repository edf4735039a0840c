import { describe, expect, it } from 'vitest';
import { closeAll, startBackend, startStaticBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

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
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '1500', 'retry-after': '2' });
    const healthy = await startBackend(undefined, 'healthy');
    live.backends = [throttling, healthy];
    live.gateway = await startGateway(pool([{ url: throttling.url }, { url: healthy.url, priority: 2 }]));

    const sentAt = Date.now();
    const first = await fetch(`${live.gateway.url}/v1/chat`, { method: 'POST', body: '{"q":1}' });
    const answeredAt = Date.now();
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ backend: 'healthy' });
    expect(throttling.received).toHaveLength(1);
    expect(healthy.received[0]!.body).toBe('{"q":1}');

    // the precise retry-after-ms (1.5 s) wins over the whole-second Retry-After (2 s): the cooldown
    // ends 1.5 s after the 429 arrived, which was between sending and getting the answer
    const cooldownUntil = live.gateway.gateway.snapshot.upstreams.get('llm')!.backends[0]!.state.cooldownUntil;
    expect(cooldownUntil).toBeGreaterThanOrEqual(sentAt + 1500);
    expect(cooldownUntil).toBeLessThanOrEqual(answeredAt + 1500);

    // nothing reaches the throttled backend before its cooldown ends, however long these take
    for (let i = 0; i < 5; i++) expect((await fetch(`${live.gateway.url}/v1/chat`)).status).toBe(200);
    expect(throttling.received.filter((request) => request.at < cooldownUntil)).toHaveLength(1);

    // once it has ended, the throttled backend (priority 1) is used again
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, cooldownUntil + 50 - Date.now())));
    await fetch(`${live.gateway.url}/v1/chat`);
    expect(throttling.received.length).toBeGreaterThanOrEqual(2);
    expect(throttling.received[1]!.at).toBeGreaterThanOrEqual(cooldownUntil);
  });
});

describe('priority and weights through the gateway', () => {
  it('sends everything to priority 1 while it is ready, split by weight', async () => {
    const a = await startBackend(undefined, 'a');
    const b = await startBackend(undefined, 'b');
    const c = await startBackend(undefined, 'c');
    live.backends = [a, b, c];
    live.gateway = await startGateway(
      pool([
        { url: a.url, weight: 3 },
        { url: b.url, weight: 1 },
        { url: c.url, priority: 2 },
      ]),
    );
    for (let i = 0; i < 400; i++) await (await fetch(`${live.gateway.url}/v1/x`)).arrayBuffer();
    expect(c.received).toHaveLength(0);
    expect(a.received.length + b.received.length).toBe(400);
    expect(a.received.length / 400).toBeGreaterThan(0.65);
    expect(a.received.length / 400).toBeLessThan(0.85);
  });
});

describe('every backend throttled', () => {
  it('answers 429 itself with the soonest Retry-After, problem+json, and calls no backend', async () => {
    const a = await startStaticBackend(429, { 'retry-after-ms': '3000' });
    const b = await startStaticBackend(429, { 'retry-after': '5' });
    live.backends = [a, b];
    live.gateway = await startGateway(pool([{ url: a.url }, { url: b.url, priority: 2 }]));

    // first request: both backends tried once, both throttle → gateway's own 429
    const first = await fetch(`${live.gateway.url}/v1/x`, { method: 'POST', body: 'x' });
    expect(first.status).toBe(429);
    expect(first.headers.get('content-type')).toBe('application/problem+json');
    expect(a.received).toHaveLength(1);
    expect(b.received).toHaveLength(1);

    const second = await fetch(`${live.gateway.url}/v1/x`);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('3');
    const ms = Number(second.headers.get('retry-after-ms'));
    expect(ms).toBeGreaterThan(2500);
    expect(ms).toBeLessThanOrEqual(3000);
    const problem = (await second.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ type: 'urn:spillway:problem:all-backends-throttled', status: 429, upstream: 'llm' });
    expect(a.received).toHaveLength(1);
    expect(b.received).toHaveLength(1);

    const view = (await (await fetch(`${live.gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { llm: { backends: Array<{ state: string; lastCooldown: { source: string } }> } };
    };
    expect(view.upstreams.llm.backends.map((backend) => backend.state)).toEqual(['cooling', 'cooling']);
    expect(view.upstreams.llm.backends.map((backend) => backend.lastCooldown.source)).toEqual(['retry-after-ms', 'retry-after']);
  });

  it('Retry-After is at least 1 second even when the soonest backend is back in a few ms', async () => {
    const a = await startStaticBackend(429, { 'retry-after-ms': '300' });
    live.backends = [a];
    live.gateway = await startGateway(pool([{ url: a.url }]));
    await (await fetch(`${live.gateway.url}/v1/x`)).arrayBuffer();
    const res = await fetch(`${live.gateway.url}/v1/x`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(Number(res.headers.get('retry-after-ms'))).toBeLessThanOrEqual(300);
  });
});

describe('request bodies and failover', () => {
  it('replays a POST body to the next backend byte for byte', async () => {
    const a = await startStaticBackend(429, { 'retry-after-ms': '5000' });
    const b = await startBackend(undefined, 'b');
    live.backends = [a, b];
    live.gateway = await startGateway(pool([{ url: a.url }, { url: b.url, priority: 2 }]));
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'é'.repeat(5000) }] });
    const res = await fetch(`${live.gateway.url}/v1/chat`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(a.received[0]!.body).toBe(body);
    expect(b.received[0]!.body).toBe(body);
    expect(b.received[0]!.headers['content-length']).toBe(String(Buffer.byteLength(body)));
  });

  it('sends a body larger than the replay buffer once, and passes the 429 on', async () => {
    const a = await startStaticBackend(429, { 'retry-after-ms': '5000' }, '{"error":"busy"}');
    const b = await startBackend(undefined, 'b');
    live.backends = [a, b];
    live.gateway = await startGateway(pool([{ url: a.url }, { url: b.url, priority: 2 }], '    failover: { replayBuffer: 1kb }'));
    const body = 'x'.repeat(4096);
    const res = await fetch(`${live.gateway.url}/v1/upload`, { method: 'POST', body });
    expect(res.status).toBe(429);
    expect(await res.text()).toBe('{"error":"busy"}');
    expect(a.received[0]!.body).toBe(body);
    expect(b.received).toHaveLength(0);
    // the cooldown was still recorded: the next small request goes to b directly
    expect((await fetch(`${live.gateway.url}/v1/x`, { method: 'POST', body: 'small' })).status).toBe(200);
    expect(a.received).toHaveLength(1);
  });

  it('streams a chunked body larger than the replay buffer', async () => {
    const a = await startBackend(undefined, 'a');
    live.backends = [a];
    live.gateway = await startGateway(pool([{ url: a.url }], '    failover: { replayBuffer: 1kb }'));
    const parts = Array.from({ length: 10 }, (_, i) => String(i).repeat(1000));
    const stream = new ReadableStream({
      start(controller) {
        for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });
    const res = await fetch(`${live.gateway.url}/v1/upload`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    expect(a.received[0]!.body).toBe(parts.join(''));
  });
});

describe('failover limits and statuses', () => {
  it('stops after maxAttempts and passes the last answer through when other backends are still ready', async () => {
    const a = await startStaticBackend(429, { 'retry-after-ms': '5000' }, '{"from":"a"}');
    const b = await startStaticBackend(429, { 'retry-after-ms': '5000' }, '{"from":"b"}');
    const c = await startBackend(undefined, 'c');
    live.backends = [a, b, c];
    live.gateway = await startGateway(
      pool([{ url: a.url }, { url: b.url, priority: 2 }, { url: c.url, priority: 3 }], '    failover: { maxAttempts: 2 }'),
    );
    const res = await fetch(`${live.gateway.url}/v1/x`);
    expect(res.status).toBe(429);
    expect(await res.text()).toBe('{"from":"b"}');
    expect(c.received).toHaveLength(0);
    // next request: a and b are cooling, c serves
    expect((await fetch(`${live.gateway.url}/v1/x`)).status).toBe(200);
  });

  it('treats 503 with a retry hint as throttling and a bare 503 as an answer to pass through', async () => {
    const hinted = await startStaticBackend(503, { 'retry-after': '30' });
    const bare = await startStaticBackend(503, {}, '{"down":true}');
    const ok = await startBackend(undefined, 'ok');
    live.backends = [hinted, bare, ok];
    live.gateway = await startGateway(pool([{ url: hinted.url }, { url: ok.url, priority: 2 }]));
    expect((await fetch(`${live.gateway.url}/v1/x`)).status).toBe(200);
    await closeAll(live.gateway);
    live.gateway = await startGateway(pool([{ url: bare.url }, { url: ok.url, priority: 2 }]));
    const res = await fetch(`${live.gateway.url}/v1/x`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('{"down":true}');
    expect(ok.received).toHaveLength(1);
  });

  it('passes non-throttle 4xx and 5xx through unchanged', async () => {
    const teapot = await startStaticBackend(418, { 'x-custom': 'yes', 'retry-after': '5' }, 'short and stout');
    const other = await startBackend(undefined, 'other');
    live.backends = [teapot, other];
    live.gateway = await startGateway(pool([{ url: teapot.url }, { url: other.url, priority: 2 }]));
    const res = await fetch(`${live.gateway.url}/v1/x`);
    expect(res.status).toBe(418);
    expect(res.headers.get('x-custom')).toBe('yes');
    expect(await res.text()).toBe('short and stout');
    expect(other.received).toHaveLength(0);
  });

  it('logs one decision event per cooldown, naming the header and value', async () => {
    const a = await startStaticBackend(429, { 'x-ms-retry-after-ms': '1234', 'retry-after': '2' });
    const b = await startBackend(undefined, 'b');
    live.backends = [a, b];
    live.gateway = await startGateway(pool([{ url: a.url }, { url: b.url, priority: 2 }]));
    await (await fetch(`${live.gateway.url}/v1/x`)).arrayBuffer();
    const events = live.gateway.logs.events('backend.cooldown');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ upstream: 'llm', backend: a.url, source: 'x-ms-retry-after-ms', value: '1234', delayMs: 1234 });
  });
});
