// Mirroring: the client never waits for the shadow, the shadow has its own cap, and every pair
// is compared (status, latencies, optionally JSON bodies).

import { afterEach, describe, expect, it } from 'vitest';
import type { MirrorStats } from '../src/state/route-stats.js';
import type { MirrorComparison } from '../src/core/events.js';
import { withDefaults } from '../src/snapshot/observer.js';
import { closeAll, startBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { waitUntil } from './helpers/wait.js';

/** GET /admin/routes shows a rule's mirror counters plus the agreement rate. */
type MirrorView = MirrorStats & { agreementRate: number | null };

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await closeAll(...open.splice(0));
});

async function setup(
  shadowHandler: Parameters<typeof startBackend>[0],
  mirror: string,
  primaryHandler?: Parameters<typeof startBackend>[0],
) {
  const primary = await startBackend(primaryHandler, 'primary');
  const shadow = await startBackend(shadowHandler, 'shadow');
  const comparisons: MirrorComparison[] = [];
  const gw = await startGateway(
    `
upstreams:
  legacy: { backends: [ { url: ${primary.url} } ] }
  orders: { backends: [ { url: ${shadow.url} } ] }
routes:
  - name: everything-else
    upstream: legacy
    mirror: ${mirror}
`,
    { observer: withDefaults({ mirrorCompared: (_route, comparison) => comparisons.push(comparison) }) },
  );
  open.push(gw, primary, shadow);
  return { primary, shadow, gw, comparisons };
}

async function mirrorStats(gw: TestGateway): Promise<MirrorView> {
  const view = (await (await fetch(`${gw.adminUrl}/admin/routes`)).json()) as { routes: Array<{ mirror: MirrorView }> };
  return view.routes[0]!.mirror;
}

/** Mirror counters once `done` holds for them. */
function statsWhen(gw: TestGateway, done: (stats: MirrorView) => boolean, message: string): Promise<MirrorView> {
  return waitUntil(() => mirrorStats(gw), { until: done, message: `mirror stats with ${message}` });
}

/** A gate the shadow backend waits at: the shadow cannot answer before the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

async function timed(url: string, init?: RequestInit): Promise<{ ms: number; status: number; body: string }> {
  const start = performance.now();
  const response = await fetch(url, init);
  const body = await response.text();
  return { ms: performance.now() - start, status: response.status, body };
}

describe('mirror', () => {
  it('a slow shadow does not delay the client', async () => {
    // the shadow answers only once the test opens the gate, after the client has its whole answer:
    // a gateway that waited for the shadow would never answer the client (the test times out)
    const shadowGate = gate();
    let shadowAnswered = false;
    const { gw, shadow } = await setup(async (_req, res) => {
      await shadowGate.wait;
      shadowAnswered = true;
      res.writeHead(200).end('{}');
    }, '{ upstream: orders, percent: 100 }');
    const result = await timed(`${gw.url}/api/orders/1`, {
      method: 'POST',
      body: '{"item":1}',
      headers: { 'content-type': 'application/json' },
    });
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ backend: 'primary' });
    // the client had its whole answer before the shadow answered at all
    expect(shadowAnswered).toBe(false);
    // the shadow did get the same request, marked as a copy
    await waitUntil(() => shadow.received.length === 1, { message: 'the copy at the shadow' });
    expect(shadow.received[0]).toMatchObject({ method: 'POST', url: '/api/orders/1', body: '{"item":1}' });
    expect(shadow.received[0]!.headers['x-spillway-mirror']).toBe('1');
    expect(await mirrorStats(gw)).toMatchObject({ sent: 1, compared: 0, inFlight: 1 });
    shadowGate.open();
    const stats = await statsWhen(gw, (s) => s.compared === 1, 'compared 1');
    expect(stats).toMatchObject({ sent: 1, compared: 1, statusEqual: 1, agreementRate: 1, inFlight: 0 });
  });

  it('a dead shadow does not delay or alter the client, and counts as a shadow error', async () => {
    const dead = await startBackend();
    const deadUrl = dead.url;
    await dead.close();
    const primary = await startBackend(undefined, 'primary');
    const gw = await startGateway(`
upstreams:
  legacy: { backends: [ { url: ${primary.url} } ] }
  orders: { backends: [ { url: ${deadUrl} } ] }
routes:
  - upstream: legacy
    mirror: { upstream: orders }
`);
    open.push(gw, primary);
    for (let i = 0; i < 5; i++) {
      const result = await timed(`${gw.url}/x/${i}`);
      expect(result.status).toBe(200);
      expect(JSON.parse(result.body)).toMatchObject({ backend: 'primary', url: `/x/${i}` });
      // a refused connection fails at once, so there is nothing to wait for: a generous bound
      expect(result.ms).toBeLessThan(3_000);
    }
    const stats = await statsWhen(gw, (s) => s.shadowErrors === 5, 'shadowErrors 5');
    expect(stats).toMatchObject({ sent: 5, shadowErrors: 5, compared: 0, agreementRate: null });
  });

  it('the shadow has its own concurrency cap: past it copies are skipped', async () => {
    // the shadow holds every copy until all ten clients have their answers
    const shadowGate = gate();
    const { gw, shadow } = await setup(async (_req, res) => {
      await shadowGate.wait;
      res.writeHead(200).end('{}');
    }, '{ upstream: orders, maxConcurrent: 2 }');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => timed(`${gw.url}/burst/${i}`)));
    for (const result of results) expect(result.status).toBe(200);
    expect(await mirrorStats(gw)).toMatchObject({ sent: 2, skipped: 8, compared: 0, inFlight: 2 });
    shadowGate.open();
    const stats = await statsWhen(gw, (s) => s.compared === 2, 'compared 2');
    expect(stats).toMatchObject({ sent: 2, skipped: 8, compared: 2, inFlight: 0 });
    expect(shadow.received).toHaveLength(2);
  });

  it('a shadow that never answers is abandoned after mirror.timeout, freeing its slot', async () => {
    // the shadow never answers (the gate stays shut): the client's answer cannot have waited for it
    const { gw } = await setup(async (_req, res) => {
      await gate().wait;
      res.writeHead(200).end('{}');
    }, '{ upstream: orders, maxConcurrent: 1, timeout: 150ms }');
    const first = await timed(`${gw.url}/a`);
    expect(first.status).toBe(200);
    const stats = await statsWhen(gw, (s) => s.shadowErrors === 1, 'shadowErrors 1');
    expect(stats).toMatchObject({ sent: 1, shadowErrors: 1, inFlight: 0 });
    await fetch(`${gw.url}/b`).then((r) => r.text());
    expect((await mirrorStats(gw)).sent).toBe(2);
  });

  it('compares status codes and reports each pair with both latencies', async () => {
    const { gw, comparisons } = await setup((req, res) => {
      const status = req.url === '/differs' ? 500 : 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    }, '{ upstream: orders, compare: status }');
    for (const path of ['/same', '/differs', '/same', '/same']) await fetch(gw.url + path).then((r) => r.text());
    const stats = await statsWhen(gw, (s) => s.compared === 4, 'compared 4');
    expect(stats).toMatchObject({ compared: 4, statusEqual: 3, agreementRate: 0.75, bodyCompared: 0 });
    expect(comparisons).toHaveLength(4);
    const differs = comparisons.find((c) => !c.statusEqual)!;
    expect(differs).toMatchObject({ primaryStatus: 200, shadowStatus: 500, bodyEqual: undefined });
    for (const c of comparisons) {
      expect(c.primaryMs).toBeGreaterThan(0);
      expect(c.shadowMs).toBeGreaterThan(0);
    }
  });

  it('compare: body checks JSON bodies by value', async () => {
    const primaryBody = (url: string) => ({ id: 7, items: [1, 2], path: url });
    const { gw, comparisons } = await setup(
      (req, res) => {
        // same values, different key order and spacing — except on /wrong
        const body = req.url === '/wrong' ? { path: req.url, items: [2, 1], id: 7 } : { path: req.url, items: [1, 2], id: 7 };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2));
      },
      '{ upstream: orders, compare: body }',
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(primaryBody(req.url ?? '')));
      },
    );
    for (const path of ['/right', '/wrong', '/right']) {
      const response = await fetch(gw.url + path);
      expect(await response.json()).toEqual(primaryBody(path));
    }
    const stats = await statsWhen(gw, (s) => s.compared === 3, 'compared 3');
    expect(stats).toMatchObject({ compared: 3, statusEqual: 3, bodyCompared: 3, bodyEqual: 2 });
    expect(stats.agreementRate).toBeCloseTo(2 / 3, 3);
    expect(comparisons.filter((c) => c.bodyEqual === false)).toHaveLength(1);
  });

  it('percent mirrors only that share of requests', async () => {
    const { gw } = await setup(undefined, '{ upstream: orders, percent: "20%", compare: none }');
    for (let i = 0; i < 200; i++) await fetch(`${gw.url}/p/${i}`).then((r) => r.text());
    const stats = await mirrorStats(gw);
    expect(stats.sent).toBeGreaterThan(15);
    expect(stats.sent).toBeLessThan(65);
    expect(stats.compared).toBe(0);
  });
});
