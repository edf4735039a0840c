import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../src/snapshot/observer.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { waitUntil } from './helpers/wait.js';
import { closed, nextMessage, openClient, startEchoBackend, startRefusingBackend } from './helpers/websocket-backend.js';

let gateway: TestGateway | undefined;
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await gateway?.close();
  await Promise.all(cleanups.map((cleanup) => cleanup()));
  gateway = undefined;
  cleanups = [];
});

function track<T extends { close(): Promise<void> }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

const wsUrl = (url: string) => url.replace(/^http/, 'ws');

describe('WebSocket proxying', () => {
  it('echoes through the gateway, with the route rewrite, backend path and backend headers applied', async () => {
    const echo = track(await startEchoBackend('east'));
    gateway = await startGateway(`upstreams:
  realtime:
    backends:
      - url: ${echo.url}/openai/deployments/east
        headers: { api-key: backend-key }
routes:
  - match: { path: /openai/realtime }
    upstream: realtime
    rewrite: { stripPrefix: /openai/realtime }
    removeHeaders: [api-key]
`);
    const client = await openClient(`${wsUrl(gateway.url)}/openai/realtime/session?model=gpt-4o`, {
      headers: { 'api-key': 'client-key' },
      protocol: 'realtime',
    } as never);
    client.send('who');
    expect(await nextMessage(client)).toBe('east /openai/deployments/east/session?model=gpt-4o');
    client.send('hello');
    expect(await nextMessage(client)).toBe('hello');
    const binary = Buffer.alloc(70_000, 7);
    client.send(binary);
    const back = await new Promise<Buffer>((resolve) => client.once('message', (data) => resolve(data as Buffer)));
    expect(Buffer.compare(back, binary)).toBe(0);
    expect(echo.handshakes[0]!.headers['api-key']).toBe('backend-key');
    expect(echo.handshakes[0]!.headers.host).toBe(`127.0.0.1:${echo.port}`);
    client.close(1000, 'bye');
    expect(await closed(client)).toEqual({ code: 1000, reason: 'bye' });
  });

  it('an upgrade refused with 429 cools that backend down and goes to the next one', async () => {
    const busy = track(await startRefusingBackend(429, { 'retry-after-ms': '60000' }));
    const echo = track(await startEchoBackend('spill'));
    gateway = await startGateway(`upstreams:
  realtime:
    backends:
      - { url: ${busy.url}, priority: 1 }
      - { url: ${echo.url}, priority: 2 }
routes:
  - upstream: realtime
`);
    const first = await openClient(`${wsUrl(gateway.url)}/rt`);
    first.send('who');
    expect(await nextMessage(first)).toBe('spill /rt');
    const second = await openClient(`${wsUrl(gateway.url)}/rt`);
    second.send('who');
    expect(await nextMessage(second)).toBe('spill /rt');
    expect(busy.upgrades).toBe(1); // cooling: not asked again
    const view = (await (await fetch(`${gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { realtime: { backends: Array<Record<string, unknown>> } };
    };
    expect(view.upstreams.realtime.backends[0]).toMatchObject({ state: 'cooling', throttled: 1 });
    expect(view.upstreams.realtime.backends[1]).toMatchObject({ state: 'ready', inFlight: 2 });
    expect(gateway.logs.events('backend.cooldown')[0]).toMatchObject({ source: 'retry-after-ms' });
    first.close();
    second.close();
    await Promise.all([closed(first), closed(second)]);
  });

  it("when every backend refuses with 429 the client gets the gateway's 429 with Retry-After", async () => {
    const a = track(await startRefusingBackend(429, { 'retry-after': '5' }));
    const b = track(await startRefusingBackend(429, { 'retry-after': '7' }));
    gateway = await startGateway(`upstreams:\n  rt:\n    backends: [ { url: ${a.url} }, { url: ${b.url} } ]\nroutes:\n  - upstream: rt\n`);
    const refusal = (await openClient(`${wsUrl(gateway.url)}/rt`).catch((error: unknown) => error)) as {
      status: number;
      headers: Record<string, string>;
      body: string;
    };
    expect(refusal.status).toBe(429);
    expect(refusal.headers['content-type']).toBe('application/problem+json');
    expect(refusal.headers['retry-after']).toBe('5');
    expect(JSON.parse(refusal.body)).toMatchObject({ type: 'urn:spillway:problem:all-backends-throttled', upstream: 'rt' });
    expect(a.upgrades + b.upgrades).toBe(2);
  });

  it("handshakes feed the backend's breaker: failing ones open it, then the client gets 503 without a call", async () => {
    const failing = track(await startRefusingBackend(502));
    gateway = await startGateway(`upstreams:
  rt:
    breaker: { minRequests: 2, failureRate: 50%, openFor: 10s }
    backends: [ { url: ${failing.url} } ]
routes:
  - upstream: rt
`);
    for (let i = 0; i < 2; i++) {
      const refusal = (await openClient(`${wsUrl(gateway.url)}/rt`).catch((error: unknown) => error)) as { status: number };
      expect(refusal.status).toBe(502);
    }
    const blocked = (await openClient(`${wsUrl(gateway.url)}/rt`).catch((error: unknown) => error)) as { status: number; body: string };
    expect(blocked.status).toBe(503);
    expect(JSON.parse(blocked.body)).toMatchObject({ type: 'urn:spillway:problem:all-backends-unavailable', upstream: 'rt' });
    expect(failing.upgrades).toBe(2);
  });

  it('an open tunnel holds a concurrency slot until it closes', async () => {
    const echo = track(await startEchoBackend());
    gateway = await startGateway(`upstreams:
  rt:
    concurrency: { perBackend: 1, queue: 0 }
    backends: [ { url: ${echo.url} } ]
routes:
  - upstream: rt
`);
    const first = await openClient(`${wsUrl(gateway.url)}/rt`);
    const full = (await openClient(`${wsUrl(gateway.url)}/rt`).catch((error: unknown) => error)) as { status: number; body: string };
    expect(full.status).toBe(503);
    expect(JSON.parse(full.body)).toMatchObject({ type: 'urn:spillway:problem:concurrency-limit' });
    first.close();
    await closed(first);
    await waitUntil(() => gateway!.gateway.snapshot.upstreams.get('rt')!.backends[0]!.state.inFlight === 0, {
      message: 'no tunnel in flight',
    });
    const again = await openClient(`${wsUrl(gateway.url)}/rt`);
    again.send('who');
    expect(await nextMessage(again)).toBe('echo /rt');
    again.close();
    await closed(again);
  });

  it("the route's client rate limit counts each handshake; the client key it reads is still stripped", async () => {
    const echo = track(await startEchoBackend());
    gateway = await startGateway(`rateLimits:
  per-key: { key: "header:x-api-key", capacity: 1, refill: 1/h }
upstreams:
  rt:
    backends: [ { url: ${echo.url} } ]
routes:
  - upstream: rt
    rateLimit: per-key
    removeHeaders: [x-api-key]
`);
    const first = await openClient(`${wsUrl(gateway.url)}/rt`, { headers: { 'x-api-key': 'alice' } });
    expect(echo.handshakes[0]!.headers['x-api-key']).toBeUndefined();
    const limited = (await openClient(`${wsUrl(gateway.url)}/rt`, { headers: { 'x-api-key': 'alice' } }).catch(
      (error: unknown) => error,
    )) as { status: number; headers: Record<string, string>; body: string };
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.body)).toMatchObject({ type: 'urn:spillway:problem:client-rate-limited', policy: 'per-key' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const other = await openClient(`${wsUrl(gateway.url)}/rt`, { headers: { 'x-api-key': 'bob' } });
    for (const client of [first, other]) {
      client.close();
      await closed(client);
    }
    expect(echo.handshakes).toHaveLength(2);
  });

  it("passes on a backend's other refusals (401) unchanged", async () => {
    const denied = track(await startRefusingBackend(401, { 'www-authenticate': 'Bearer' }));
    gateway = await startGateway(`upstreams:\n  rt:\n    backends: [ { url: ${denied.url} } ]\nroutes:\n  - upstream: rt\n`);
    const refusal = (await openClient(`${wsUrl(gateway.url)}/rt`).catch((error: unknown) => error)) as {
      status: number;
      headers: Record<string, string>;
      body: string;
    };
    expect(refusal.status).toBe(401);
    expect(refusal.headers['www-authenticate']).toBe('Bearer');
    expect(refusal.body).toBe('{"error":{"code":"401"}}');
  });

  it('a backend that refuses the connection is skipped: the handshake goes on to the next one', async () => {
    const gone = await startEchoBackend();
    await gone.close();
    const echo = track(await startEchoBackend('second'));
    gateway = await startGateway(
      `upstreams:\n  rt:\n    backends: [ { url: ${gone.url}, priority: 1 }, { url: ${echo.url}, priority: 2 } ]\nroutes:\n  - upstream: rt\n`,
    );
    const client = await openClient(`${wsUrl(gateway.url)}/rt`);
    client.send('who');
    expect(await nextMessage(client)).toBe('second /rt');
    client.close();
    await closed(client);
  });

  it('answers unknown paths and unreachable backends with problem+json', async () => {
    const gone = await startEchoBackend();
    await gone.close();
    gateway = await startGateway(
      `upstreams:\n  rt:\n    backends: [ { url: ${gone.url} } ]\nroutes:\n  - match: { path: /rt }\n    upstream: rt\n`,
    );
    const missing = (await openClient(`${wsUrl(gateway.url)}/nowhere`).catch((error: unknown) => error)) as {
      status: number;
      body: string;
    };
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ type: 'urn:spillway:problem:route-not-found' });
    const down = (await openClient(`${wsUrl(gateway.url)}/rt`).catch((error: unknown) => error)) as { status: number; body: string };
    expect(down.status).toBe(502);
    expect(JSON.parse(down.body)).toMatchObject({ type: 'urn:spillway:problem:upstream-unreachable' });
  });

  it('a close started by the backend reaches the client with its code and reason', async () => {
    const echo = track(await startEchoBackend());
    const events: string[] = [];
    const observer = withDefaults({
      websocketOpened: (upstream, backend) => events.push(`open ${upstream.name} ${backend.url}`),
      websocketClosed: (upstream, _backend, reason, durationMs) => events.push(`closed ${upstream.name} ${reason} ${durationMs > 0}`),
    });
    gateway = await startGateway(`upstreams:\n  rt:\n    backends: [ { url: ${echo.url} } ]\nroutes:\n  - upstream: rt\n`, { observer });
    const client = await openClient(`${wsUrl(gateway.url)}/rt`);
    client.send('x');
    await nextMessage(client);
    echo.sockets[0]!.close(4000, 'done here');
    expect(await closed(client)).toEqual({ code: 4000, reason: 'done here' });
    await waitUntil(() => echo.closes.length === 1, { message: 'the backend to see the close' });
    expect(echo.closes[0]).toEqual({ code: 4000, reason: 'done here' });
    await waitUntil(() => gateway!.gateway.tunnels.size === 0, { message: 'no open tunnel' });
    expect(gateway.gateway.snapshot.upstreams.get('rt')!.backends[0]!.state.inFlight).toBe(0);
    expect(events).toEqual([`open rt ${echo.url}`, 'closed rt closed true']);
  });

  it('a client close reaches the backend with its code and reason', async () => {
    const echo = track(await startEchoBackend());
    gateway = await startGateway(`upstreams:\n  rt:\n    backends: [ { url: ${echo.url} } ]\nroutes:\n  - upstream: rt\n`);
    const client = await openClient(`${wsUrl(gateway.url)}/rt`);
    client.close(1000, 'client done');
    expect(await closed(client)).toEqual({ code: 1000, reason: 'client done' });
    await waitUntil(() => echo.closes.length === 1, { message: 'the backend to see the close' });
    expect(echo.closes[0]).toEqual({ code: 1000, reason: 'client done' });
  });

  it('closes an idle tunnel on both sides with 1001 after timeouts.websocketIdle', async () => {
    const echo = track(await startEchoBackend());
    // idle timeout 600 ms, a message every 150 ms: traffic keeps it open with a wide margin
    gateway = await startGateway(
      `upstreams:\n  rt:\n    timeouts: { websocketIdle: 600ms }\n    backends: [ { url: ${echo.url} } ]\nroutes:\n  - upstream: rt\n`,
    );
    const client = await openClient(`${wsUrl(gateway.url)}/rt`);
    const started = Date.now();
    // traffic keeps it open
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      client.send(`ping ${i}`);
      await nextMessage(client);
    }
    expect(client.readyState).toBe(client.OPEN);
    expect(await closed(client)).toEqual({ code: 1001, reason: 'idle timeout' });
    // three pauses of 150 ms, then 600 ms idle: the tunnel outlived the idle timeout thanks to the traffic
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    await waitUntil(() => echo.closes.length === 1, { message: 'the backend to see the close' });
    expect(echo.closes[0]).toEqual({ code: 1001, reason: 'idle timeout' });
    await waitUntil(() => gateway!.logs.events('websocket.closed').length === 1, { message: 'the websocket.closed log line' });
    expect(gateway.logs.events('websocket.closed')[0]).toMatchObject({ upstream: 'rt', reason: 'idle' });
  });

  it('gateway shutdown closes open tunnels with 1001 instead of hanging', async () => {
    const echo = track(await startEchoBackend());
    gateway = await startGateway(`upstreams:\n  rt:\n    backends: [ { url: ${echo.url} } ]\nroutes:\n  - upstream: rt\n`);
    const client = await openClient(`${wsUrl(gateway.url)}/rt`);
    const started = Date.now();
    const closing = closed(client);
    await gateway.gateway.close(20_000);
    gateway = undefined;
    expect(await closing).toEqual({ code: 1001, reason: 'gateway shutting down' });
    // at once, not after the 20 s drain allowance (the bound leaves room for a busy machine)
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
