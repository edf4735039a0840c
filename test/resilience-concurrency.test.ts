import { describe, expect, it } from 'vitest';
import { startGateway } from './helpers/gateway.js';
import { delayed, ok, recordingObserver, served, startSwitchable } from './helpers/resilience.js';
import { waitUntil } from './helpers/wait.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

function config(urls: string[], extra: string): string {
  return `upstreams:
  orders:
    backends:
${urls.map((url, i) => `      - { url: ${url}, priority: ${i + 1} }`).join('\n')}
${extra}
routes:
  - upstream: orders
`;
}

async function fire(url: string, n: number): Promise<Response[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      fetch(url).then(async (res) => {
        await res.clone().arrayBuffer();
        return res;
      }),
    ),
  );
}

describe('concurrency limit per backend', () => {
  it('excess requests wait in the queue; a full queue and an expired wait are answered 503 with Retry-After', async () => {
    const slow = await startSwitchable('slow', delayed(800, ok('slow')));
    live.backends = [slow];
    const recorder = recordingObserver();
    live.gateway = await startGateway(config([slow.url], '    concurrency: { perBackend: 2, queue: 2, maxWait: 150ms }'), {
      observer: recorder.observer,
    });
    const started = Date.now();
    const responses = await fire(`${live.gateway.url}/x`, 6);
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 503, 503, 503, 503]);
    expect(served(slow)).toBe(2);
    expect(recorder.of('concurrency').sort()).toEqual(['queue-full', 'queue-full', 'wait-expired', 'wait-expired']);
    const rejected = responses.find((r) => r.status === 503)!;
    expect(rejected.headers.get('retry-after')).toBe('1');
    expect(rejected.headers.get('content-type')).toBe('application/problem+json');
    expect(await rejected.json()).toMatchObject({ type: 'urn:spillway:problem:concurrency-limit', upstream: 'orders' });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('queued requests are served in order as slots free up', async () => {
    let inFlight = 0;
    let peak = 0;
    const slow = await startSwitchable('slow', (req, res, body) => {
      peak = Math.max(peak, ++inFlight);
      return delayed(100, (rq, rs, b) => {
        inFlight--;
        ok('slow')(rq, rs, b);
      })(req, res, body);
    });
    live.backends = [slow];
    live.gateway = await startGateway(config([slow.url], '    concurrency: { perBackend: 2, queue: 10, maxWait: 2s }'));
    const responses = await fire(`${live.gateway.url}/x`, 8);
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(peak).toBe(2);
  });

  it('a burst never builds an unbounded backlog: at most `queue` requests wait', async () => {
    const slow = await startSwitchable('slow', delayed(300, ok('slow')));
    live.backends = [slow];
    live.gateway = await startGateway(config([slow.url], '    concurrency: { perBackend: 1, queue: 5, maxWait: 1s }'));
    const state = live.gateway.gateway.snapshot.upstreams.get('orders')!.backends[0]!.state;
    let maxQueued = 0;
    const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, state.queued)), 5);
    const burst = fire(`${live.gateway.url}/x`, 60);
    await waitUntil(() => state.queued > 0, { timeout: 2000, message: 'queue' });
    const view = (await (await fetch(`${live.gateway.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { orders: { backends: Array<{ inFlight: number; queued: number; maxConcurrent: number }> } };
    };
    expect(view.upstreams.orders.backends[0]).toMatchObject({ inFlight: 1, maxConcurrent: 1 });
    expect(view.upstreams.orders.backends[0]!.queued).toBeLessThanOrEqual(5);
    const statuses = (await burst).map((r) => r.status);
    clearInterval(sampler);
    expect(maxQueued).toBeLessThanOrEqual(5);
    // Every request was served or refused at once / after maxWait; none was left hanging.
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(state.queued).toBe(0);
    expect(state.inFlight).toBe(0);
  });

  it('selection prefers a backend with a free slot', async () => {
    const a = await startSwitchable('a', delayed(200, ok('a')));
    const b = await startSwitchable('b', delayed(200, ok('b')));
    live.backends = [a, b];
    live.gateway = await startGateway(config([a.url, b.url], '    concurrency: { perBackend: 1, queue: 0 }'));
    const responses = await fire(`${live.gateway.url}/x`, 2);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    expect([served(a), served(b)]).toEqual([1, 1]);
  });

  it('a client that gives up leaves the queue', async () => {
    const slow = await startSwitchable('slow', delayed(300, ok('slow')));
    live.backends = [slow];
    live.gateway = await startGateway(config([slow.url], '    concurrency: { perBackend: 1, queue: 5, maxWait: 2s }'));
    const state = live.gateway.gateway.snapshot.upstreams.get('orders')!.backends[0]!.state;
    const first = fetch(`${live.gateway.url}/x`);
    await waitUntil(() => state.inFlight === 1, { timeout: 2000, message: 'in flight' });
    const controller = new AbortController();
    const waiting = fetch(`${live.gateway.url}/x`, { signal: controller.signal }).catch(() => 'aborted');
    await waitUntil(() => state.queued === 1, { timeout: 2000, message: 'queued' });
    controller.abort();
    expect(await waiting).toBe('aborted');
    await waitUntil(() => state.queued === 0, { timeout: 2000, message: 'left the queue' });
    expect((await first).status).toBe(200);
    expect(served(slow)).toBe(1);
  });
});
