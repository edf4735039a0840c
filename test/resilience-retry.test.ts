import { describe, expect, it } from 'vitest';
import { closeAll } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { delayed, ok, ordersConfig, recordingObserver, served, startSwitchable, status, steadyLoad } from './helpers/resilience.js';
import { waitUntil } from './helpers/wait.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

describe('retries on failure', () => {
  it('kill one of two backends during steady GET load: zero failed client requests', async () => {
    const a = await startSwitchable('a', delayed(5, ok('a')));
    const b = await startSwitchable('b', delayed(5, ok('b')));
    live.backends = [b];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      ordersConfig(
        [a.url, b.url],
        '    breaker: { failureRate: 50%, minRequests: 20, window: 10s, openFor: 30s, halfOpenRequests: 2 }\n    retry: { on: [connect-error, timeout, 502, 503, 504], budget: 20%, deadline: 10s }',
      ),
      { observer: recorder.observer },
    );
    let stopLoad: () => void = () => {};
    const load = steadyLoad(`${live.gateway.url}/orders`, 4, new Promise<void>((resolve) => (stopLoad = resolve)));
    await waitUntil(() => served(a) > 10 && served(b) > 10, { timeout: 5000, message: 'load on both backends' });
    await a.close(); // in-flight requests are cut, new connections refused
    const servedByB = served(b);
    await waitUntil(() => served(b) > servedByB + 40, { timeout: 5000, message: 'load after the kill' });
    stopLoad();
    const statuses = await load;
    if (statuses.some((s) => s !== 200))
      console.log(
        'kill test',
        recorder.events.filter((e) => e.type !== 'attempt' || e.value !== 'ok'),
      );
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('without a retry block a refused connection still fails over (the backend never saw the request)', async () => {
    const dead = await startSwitchable('dead');
    const b = await startSwitchable('b');
    live.backends = [b];
    await dead.close();
    live.gateway = await startGateway(ordersConfig([dead.url, b.url], ''));
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${live.gateway.url}/x`, { method: 'POST', body: 'once' });
      expect(res.status).toBe(200);
    }
    expect(b.received.every((r) => r.body === 'once')).toBe(true);
  });

  it('retries a GET on 502/503/504 on another backend at once', async () => {
    const a = await startSwitchable('a', status(502));
    const b = await startSwitchable('b');
    live.backends = [a, b];
    const recorder = recordingObserver();
    live.gateway = await startGateway(ordersConfig([a.url, b.url], '    retry: {}'), { observer: recorder.observer });
    for (let i = 0; i < 4; i++) expect((await fetch(`${live.gateway.url}/x`)).status).toBe(200);
    expect(served(a)).toBeGreaterThan(0);
    expect(recorder.of('retry', a.url)).toHaveLength(served(a));
    expect(recorder.of('retry', a.url)[0]).toBe('status 502');
  });

  it('POST without Idempotency-Key is not retried after the backend may have received it', async () => {
    const a = await startSwitchable('a', status(503));
    const b = await startSwitchable('b');
    live.backends = [a, b];
    live.gateway = await startGateway(`upstreams:
  orders:
    backends: [ { url: ${a.url}, priority: 1 }, { url: ${b.url}, priority: 2 } ]
    retry: {}
routes:
  - upstream: orders
    idempotency: { retryOnReset: true }
`);
    const post = await fetch(`${live.gateway.url}/pay`, { method: 'POST', body: 'charge' });
    expect(post.status).toBe(503);
    expect(served(b)).toBe(0);

    // the connection breaks after the request went out: still not retried
    a.behaviour = (_req, res) => void res.socket!.destroy();
    const reset = await fetch(`${live.gateway.url}/pay`, { method: 'POST', body: 'charge' });
    expect(reset.status).toBe(502);
    expect(served(b)).toBe(0);
    expect(served(a)).toBe(2);

    // with an Idempotency-Key, on a route whose backends deduplicate by it, it is safe, and retried on the next backend
    const keyed = await fetch(`${live.gateway.url}/pay`, { method: 'POST', body: 'charge', headers: { 'idempotency-key': 'k-1' } });
    expect(keyed.status).toBe(200);
    expect(b.received[0]).toMatchObject({ method: 'POST', body: 'charge' });
    expect(b.received[0]!.headers['idempotency-key']).toBe('k-1');
  });

  it('retry budget caps retries when every backend fails', async () => {
    const failing = await Promise.all(['a', 'b', 'c'].map((name) => startSwitchable(name, delayed(60, status(502)))));
    live.backends = failing;
    const urls = failing.map((b) => b.url);
    const total = () => failing.reduce((sum, b) => sum + served(b), 0);

    const capped = recordingObserver();
    live.gateway = await startGateway(ordersConfig(urls, '    retry: { budget: 0%, minRetries: 1, maxRetries: 2 }'), {
      observer: capped.observer,
    });
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${live.gateway!.url}/x`).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    expect(statuses.every((s) => s === 502)).toBe(true);
    // 12 first attempts, and at most one retry in flight at a time (instead of 24 retries)
    expect(capped.of('retry').length).toBeLessThanOrEqual(3);
    expect(total()).toBeLessThanOrEqual(15);

    await closeAll(live.gateway);
    for (const b of failing) b.received.length = 0;
    const uncapped = recordingObserver();
    live.gateway = await startGateway(ordersConfig(urls, '    retry: { budget: 100%, minRetries: 100, maxRetries: 2 }'), {
      observer: uncapped.observer,
    });
    await Promise.all(Array.from({ length: 12 }, () => fetch(`${live.gateway!.url}/x`).then((r) => r.arrayBuffer())));
    expect(uncapped.of('retry').length).toBe(24);
    expect(total()).toBe(36);
  });

  it('a single-backend pool retries the same backend with backoff', async () => {
    let calls = 0;
    const only = await startSwitchable('only', (req, res, body) =>
      ++calls <= 2 ? status(503)(req, res, body) : ok('only')(req, res, body),
    );
    live.backends = [only];
    const recorder = recordingObserver();
    live.gateway = await startGateway(ordersConfig([only.url], '    retry: { maxRetries: 3, backoff: { base: 20ms, max: 100ms } }'), {
      observer: recorder.observer,
    });
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(200);
    expect(calls).toBe(3);
    expect(recorder.of('retry')).toEqual(['status 503', 'status 503']);
  });

  it('a timeout is retried on another backend', async () => {
    const hanging = await startSwitchable('hanging', () => new Promise(() => undefined));
    const b = await startSwitchable('b');
    live.backends = [hanging, b];
    live.gateway = await startGateway(`upstreams:
  orders:
    backends: [ { url: ${hanging.url}, priority: 1 }, { url: ${b.url}, priority: 2 } ]
    timeouts: { headers: 100ms }
    retry: { deadline: 5s }
routes:
  - upstream: orders
`);
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ backend: 'b' });
  });

  it('the request deadline bounds all attempts', async () => {
    const hanging = await startSwitchable('hanging', () => new Promise(() => undefined));
    live.backends = [hanging];
    live.gateway = await startGateway(ordersConfig([hanging.url], '    retry: { deadline: 300ms }'));
    const started = Date.now();
    const res = await fetch(`${live.gateway.url}/x`);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ type: 'urn:spillway:problem:deadline-exceeded' });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(290);
    // the backend never answers, so only the deadline (300 ms) can end the request; the bound is
    // generous for a busy machine and still far below the default timeouts that would otherwise end it
    expect(took).toBeLessThan(5_000);
  });

  it('the deadline also bounds retry backoff and waiting for a concurrency slot', async () => {
    const slow = await startSwitchable('slow', delayed(20_000, ok('slow')));
    live.backends = [slow];
    live.gateway = await startGateway(
      ordersConfig([slow.url], '    retry: { deadline: 300ms }\n    concurrency: { perBackend: 1, queue: 5, maxWait: 20s }'),
    );
    const first = fetch(`${live.gateway.url}/x`);
    await waitUntil(() => served(slow) === 1, { timeout: 3000, message: 'first in flight' });
    const started = Date.now();
    const waiting = await fetch(`${live.gateway.url}/x`);
    expect(waiting.status).toBe(504);
    // bounded by the 300 ms deadline, not by the slot (20 s away) nor maxWait (20 s): a wide margin both ways
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(live.gateway.gateway.snapshot.upstreams.get('orders')!.backends[0]!.state.queued).toBe(0);
    expect((await first).status).toBe(504);
  });
});
