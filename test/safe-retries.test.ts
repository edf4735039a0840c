// Safe retries without any `retry:` block: a request the backend never received goes to the
// next backend whatever the method; an idempotent one whose connection broke before the answer
// goes once more to another backend; a POST that may have been received is never replayed.

import { describe, expect, it } from 'vitest';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { startProcessBackend, type ProcessBackend } from './helpers/process-backend.js';
import { ok, ordersConfig, served, startSwitchable, type Behaviour } from './helpers/resilience.js';
import { sleep, waitUntil } from './helpers/wait.js';

let processes: ProcessBackend[] = [];
const live = perTest(async () => {
  await Promise.all(processes.map((p) => p.close()));
  processes = [];
});

/** The backend drops the connection without answering. */
const drop: Behaviour = (_req, res) => void res.socket!.destroy();

/**
 * A primary that drops every connection and a healthy spill-over (priority 2), behind a gateway
 * whose `orders` upstream takes `upstreamExtra` lines and whose routes are `routes`.
 */
async function droppingPair(upstreamExtra = '', routes = '  - upstream: orders\n') {
  const a = await startSwitchable('a', drop);
  const b = await startSwitchable('b', ok('b'));
  live.backends = [a, b];
  live.gateway = await startGateway(`upstreams:
  orders:
    backends: [ { url: ${a.url}, priority: 1 }, { url: ${b.url}, priority: 2 } ]
${upstreamExtra}routes:
${routes}`);
  return { a, b, url: live.gateway.url };
}

async function problem(res: Response): Promise<Record<string, unknown>> {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  return (await res.json()) as Record<string, unknown>;
}

/** GET load from `workers` loops; `mark()` returns the statuses seen since the previous mark. */
function getLoad(url: string, workers: number) {
  let running = true;
  let statuses: number[] = [];
  const done = Promise.all(
    Array.from({ length: workers }, async () => {
      while (running) {
        try {
          const res = await fetch(url);
          await res.arrayBuffer();
          statuses.push(res.status);
        } catch {
          statuses.push(0);
        }
      }
    }),
  );
  return {
    mark(): number[] {
      const seen = statuses;
      statuses = [];
      return seen;
    },
    async stop(): Promise<void> {
      running = false;
      await done;
    },
  };
}

describe('safe retries by default (no retry block)', () => {
  it('a GET whose connection the backend drops is answered by the other backend', async () => {
    const a = await startSwitchable('a', drop);
    const b = await startSwitchable('b', ok('b'));
    live.backends = [a, b];
    live.gateway = await startGateway(ordersConfig([a.url, b.url], ''));
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${live.gateway.url}/items`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ backend: 'b' });
    }
    expect(served(a)).toBeGreaterThan(0);
  });

  it('a PUT body is replayed byte for byte to the other backend after a reset', async () => {
    const { a, b, url } = await droppingPair();
    const res = await fetch(`${url}/items/1`, { method: 'PUT', body: 'é-payload' });
    expect(res.status).toBe(200);
    expect(a.received[0]!.body).toBe('é-payload');
    expect(b.received[0]!.body).toBe('é-payload');
  });

  it('a POST that may have reached the backend is not replayed: 502 saying so', async () => {
    const { a, b, url } = await droppingPair();
    const res = await fetch(`${url}/pay`, { method: 'POST', body: 'charge' });
    expect(res.status).toBe(502);
    const body = await problem(res);
    expect(body).toMatchObject({ type: 'urn:spillway:problem:upstream-connection-error', mayHaveBeenReceived: true, replayed: false });
    expect(String(body.detail)).toMatch(/may have received it; it was not sent again because POST is not idempotent/);
    expect(served(a)).toBe(1);
    expect(served(b)).toBe(0);
  });

  it('a keyed POST is replayed only on a route whose backends deduplicate (idempotency.retryOnReset)', async () => {
    const { b, url } = await droppingPair(
      '',
      `  - match: { path: /dedup }\n    upstream: orders\n    idempotency: { retryOnReset: true }\n  - upstream: orders\n`,
    );
    const plain = await fetch(`${url}/pay`, { method: 'POST', body: 'x', headers: { 'idempotency-key': 'k-1' } });
    expect(plain.status).toBe(502);
    const unkeyed = await fetch(`${url}/dedup`, { method: 'POST', body: 'x' });
    expect(unkeyed.status).toBe(502);
    expect(served(b)).toBe(0);
    const keyed = await fetch(`${url}/dedup`, { method: 'POST', body: 'x', headers: { 'idempotency-key': 'k-2' } });
    expect(keyed.status).toBe(200);
    expect(b.received).toHaveLength(1);
    expect(b.received[0]!.headers['idempotency-key']).toBe('k-2');
  });

  it('with one backend only, a dropped GET gets a clear 502 (never sent to the same backend again)', async () => {
    const a = await startSwitchable('a', drop);
    live.backends = [a];
    live.gateway = await startGateway(ordersConfig([a.url], ''));
    const res = await fetch(`${live.gateway.url}/items`);
    expect(res.status).toBe(502);
    expect(await problem(res)).toMatchObject({ type: 'urn:spillway:problem:upstream-connection-error', upstream: 'orders' });
    expect(served(a)).toBe(1);
  });

  it('retry: off turns the defaults off; a refused connection still fails over', async () => {
    const a = await startSwitchable('a', drop);
    const b = await startSwitchable('b', ok('b'));
    const dead = await startSwitchable('dead');
    await dead.close();
    live.backends = [a, b];
    live.gateway = await startGateway(`upstreams:
  orders:
    backends: [ { url: ${a.url}, priority: 1 }, { url: ${b.url}, priority: 2 } ]
    retry: off
  refused:
    backends: [ { url: ${dead.url}, priority: 1 }, { url: ${b.url}, priority: 2 } ]
    retry: false
routes:
  - match: { path: /refused }
    upstream: refused
  - upstream: orders
`);
    expect((await fetch(`${live.gateway.url}/items`)).status).toBe(502);
    expect(served(b)).toBe(0);
    const post = await fetch(`${live.gateway.url}/refused`, { method: 'POST', body: 'once' });
    expect(post.status).toBe(200);
    expect(b.received[0]!.body).toBe('once');
  });

  it('a written retry block adds its `on` list to the defaults: a reset GET is still retried with on: [503]', async () => {
    const { a, b, url } = await droppingPair(`    retry: { on: [503] }\n`);
    expect((await fetch(`${url}/items`)).status).toBe(200);
    a.behaviour = (_req, res) => void res.writeHead(503).end();
    expect((await fetch(`${url}/items`)).status).toBe(200);
    expect(served(b)).toBe(2);
  });

  it.each([
    ['no retry block', ''],
    ['a written retry block with budget 20%', '    retry: { on: [connect-error, timeout, 502, 503, 504], budget: 20% }'],
  ])(
    'two backends under steady GET load, %s: SIGKILL one, stop one gracefully, restart it → no failed request in any phase',
    async (_name, retry) => {
      const a = await startProcessBackend('a', 2);
      const b = await startProcessBackend('b', 2);
      processes = [a, b];
      live.gateway = await startGateway(ordersConfig([a.url, b.url], retry));
      const load = getLoad(`${live.gateway.url}/items`, 12);
      try {
        await waitUntil(async () => (await a.served()) > 100 && (await b.served()) > 100, { timeout: 10_000, message: 'load on both' });
        load.mark();

        await a.kill();
        await sleep(700);
        const killPhase = load.mark();

        await a.restart();
        await waitUntil(() => a.served(), { until: (n) => n > 50, timeout: 10_000, message: 'a takes traffic after its restart' });
        const restartAfterKill = load.mark();

        await b.stop();
        await sleep(700);
        const stopPhase = load.mark();

        await b.restart();
        await waitUntil(() => b.served(), { until: (n) => n > 50, timeout: 10_000, message: 'b takes traffic after its restart' });
        const restartPhase = load.mark();

        for (const [phase, statuses] of Object.entries({ killPhase, restartAfterKill, stopPhase, restartPhase })) {
          expect(statuses.length, phase).toBeGreaterThan(50);
          expect(
            statuses.filter((s) => s !== 200),
            phase,
          ).toEqual([]);
        }
      } finally {
        await load.stop();
      }
    },
    60_000,
  );
});

describe('upgrade warnings', () => {
  it('a retry.on list without connect-error is flagged: it no longer switches connection retries off', async () => {
    const { parseConfigText } = await import('../src/config/load.js');
    const { warnings } = parseConfigText(
      'upstreams:\n  a:\n    backends: [ { url: "http://127.0.0.1:1" } ]\n    retry: { on: [503] }\nroutes:\n  - upstream: a\n',
      'x.yaml',
      {},
    );
    expect(warnings).toEqual([
      expect.objectContaining({ line: 4, path: 'upstreams.a.retry.on', message: expect.stringMatching(/retry: off/) }),
    ]);
  });
});
