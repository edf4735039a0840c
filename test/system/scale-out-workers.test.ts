// `workers: 2`: two processes sharing the ports act as one gateway. A cooldown learnt by one
// worker stops the other within 50 ms; a `capacity: 100` in-memory bucket admits exactly 100
// across both; /metrics is the sum; an admin reload and a drain reach both; a worker killed with
// SIGKILL is replaced and no other request fails; SIGTERM drains every worker.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from '../helpers/backend.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { httpRequest } from '../helpers/http.js';
import { sleep, waitUntil } from '../helpers/wait.js';

let gateway: GatewayProcess;
let a: TestBackend;
let b: TestBackend;
let throttleNext = false;
let throttledAt = 0;

const yaml = (extraRoute = '') => `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
workers: 2
upstreams:
  pool:
    # SPILLWAY_WORKER is set in each worker: the backends see which worker called.
    headers: { x-worker: "\${SPILLWAY_WORKER:-primary}" }
    backends:
      - { name: a, url: ${a.url}, priority: 1 }
      - { name: b, url: ${b.url}, priority: 2 }
rateLimits:
  hundred: { key: route, capacity: 100, refill: 1/h, store: memory }
routes:
  - { match: { path: /limited }, upstream: pool, rateLimit: hundred }
  - { match: { path: / }, upstream: pool }
${extraRoute}
`;

beforeAll(async () => {
  a = await startBackend((req, res) => {
    if (req.url === '/slow') {
      setTimeout(() => res.end('slow'), 600);
      return;
    }
    if (throttleNext && req.url !== '/health') {
      throttleNext = false;
      throttledAt = Date.now();
      res.writeHead(429, { 'retry-after-ms': '5000' });
      res.end('busy');
      return;
    }
    res.end(JSON.stringify({ backend: 'a' }));
  }, 'a');
  b = await startBackend(undefined, 'b');
  gateway = await startGatewayProcess({ label: 'workers: 2', yaml: yaml() });
});

afterAll(async () => {
  if (gateway.child.exitCode === null) await gateway.stop();
  await closeAll(a, b);
});

const workerPids = (): number[] =>
  execFileSync('ps', ['-o', 'pid=', '--ppid', String(gateway.pid)], { encoding: 'utf8' })
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => pid > 0);

function lightLoad(path = '/x', loops = 2) {
  const statuses: number[] = [];
  let running = true;
  let gate: Promise<void> = Promise.resolve();
  const done = Promise.all(
    Array.from({ length: loops }, async () => {
      while (running) {
        await gate;
        const answer = await httpRequest(`${gateway.url}${path}`).catch(() => ({ status: 0 }));
        statuses.push(answer.status);
        await sleep(10);
      }
    }),
  );
  return {
    statuses,
    /** Runs `action` while no request of this load is in flight. */
    between: async (action: () => Promise<void> | void) => {
      let open: () => void = () => undefined;
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      await sleep(40);
      try {
        await action();
      } finally {
        open();
      }
    },
    stop: async () => {
      running = false;
      await done;
      return statuses;
    },
  };
}

const json = { 'content-type': 'application/json' };

describe('workers: 2 on one host', () => {
  it('starts two workers behind one port', () => {
    expect(gateway.listening.workers).toBe(2);
    expect(workerPids()).toHaveLength(2);
  });

  it('a cooldown learnt by one worker stops the other within 50 ms', async () => {
    const load = lightLoad();
    await sleep(300);
    throttleNext = true;
    await waitUntil(() => throttledAt > 0, { message: 'the 429' });
    await sleep(1_000);
    const statuses = await load.stop();
    const byWorker = (list: typeof a.received) => new Set(list.map((r) => r.headers['x-worker']));
    console.log(`workers that called the backends: ${[...byWorker([...a.received, ...b.received])].join(', ')}`);
    expect(byWorker([...a.received, ...b.received]).size).toBe(2);
    const late = a.received.filter((r) => r.at > throttledAt + 50 && r.at < throttledAt + 5_000);
    console.log(
      `workers: requests to the cooling backend started more than 50 ms after its 429: ${late.length} (of ${statuses.length} requests)`,
    );
    expect(late).toEqual([]);
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Any worker's admin view shows it cooling (connections alternate between the workers).
    for (let i = 0; i < 4; i++) {
      const view = JSON.parse((await httpRequest(`${gateway.admin}/admin/upstreams`)).body);
      expect(view.upstreams.pool.backends[0].state).toBe('cooling');
    }
  });

  it('a capacity: 100 in-memory bucket admits exactly 100 across both workers', async () => {
    const answers = await Promise.all(Array.from({ length: 160 }, () => httpRequest(`${gateway.url}/limited`)));
    const ok = answers.filter((r) => r.status === 200).length;
    const limited = answers.filter((r) => r.status === 429).length;
    console.log(`bucket capacity 100 across 2 workers: ${ok} admitted, ${limited} limited (of 160)`);
    expect(ok).toBe(100);
    expect(limited).toBe(60);
    const served = [...a.received, ...b.received].filter((r) => r.url === '/limited');
    expect(new Set(served.map((r) => r.headers['x-worker'])).size).toBe(2);
  });

  it('/admin/upstreams on either worker is one picture: counters summed over both', async () => {
    const served = (name: string) => (name === 'a' ? a : b).received.filter((r) => r.url !== '/health').length;
    for (let i = 0; i < 4; i++) {
      const view = JSON.parse((await httpRequest(`${gateway.admin}/admin/upstreams`)).body);
      const [viewA, viewB] = view.upstreams.pool.backends;
      expect(viewA.requests).toBe(served('a'));
      expect(viewB.requests).toBe(served('b'));
    }
  });

  it('/metrics is the sum over both workers', async () => {
    const text = (await httpRequest(`${gateway.admin}/metrics`)).body;
    const limited = Number(/spillway_client_limited_total\{[^}]*\} (\d+)/.exec(text)?.[1] ?? NaN);
    expect(limited).toBe(60);
    expect(text).toMatch(/spillway_backend_cooling\{upstream="pool",backend="a"\} [01]\n/);
  });

  it('a drain through one worker reaches the other within 50 ms', async () => {
    await sleep(Math.max(0, throttledAt + 5_100 - Date.now()));
    const load = lightLoad();
    await sleep(200);
    const drainedAt = Date.now();
    expect((await httpRequest(`${gateway.admin}/admin/backends/pool:a/drain`, { method: 'POST', headers: json })).status).toBe(200);
    await sleep(500);
    const statuses = await load.stop();
    expect(a.received.filter((r) => r.at > drainedAt + 50)).toEqual([]);
    expect(statuses.every((s) => s === 200)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const view = JSON.parse((await httpRequest(`${gateway.admin}/admin/upstreams`)).body);
      expect(view.upstreams.pool.backends[0].adminMode).toBe('drain');
    }
    await httpRequest(`${gateway.admin}/admin/backends/pool:a/enable`, { method: 'POST', headers: json });
  });

  it('an admin reload on one worker reloads both', async () => {
    writeFileSync(gateway.configPath, yaml('  - { match: { path: /added }, upstream: pool }'));
    const reload = await httpRequest(`${gateway.admin}/admin/reload`, { method: 'POST', headers: json, body: '{}' });
    expect(reload.status).toBe(200);
    await sleep(300);
    for (let i = 0; i < 6; i++) {
      const routes = JSON.parse((await httpRequest(`${gateway.admin}/admin/routes`)).body);
      expect(JSON.stringify(routes)).toContain('/added');
    }
  });

  it('a worker killed with SIGKILL is replaced and no other request fails', async () => {
    const before = workerPids();
    const load = lightLoad('/x', 1);
    await sleep(300);
    // Killed between two requests: a request the dead worker had accepted is its own loss; every
    // other request (before, and after on new connections) must succeed.
    await load.between(() => {
      process.kill(before[0]!, 'SIGKILL');
    });
    const replaced = await waitUntil(
      () => {
        const now = workerPids();
        return now.length === 2 && !now.includes(before[0]!) ? now : undefined;
      },
      { message: 'a replacement worker', timeout: 10_000 },
    );
    await sleep(1_000);
    const statuses = await load.stop();
    console.log(
      `SIGKILL: replaced by pid ${replaced?.find((p) => !before.includes(p))}; ${statuses.filter((s) => s !== 200).length} of ${statuses.length} requests failed`,
    );
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // The replacement reads the shared picture: the drain above was lifted, the config is the reloaded one.
    for (let i = 0; i < 6; i++) {
      const routes = JSON.parse((await httpRequest(`${gateway.admin}/admin/routes`)).body);
      expect(JSON.stringify(routes)).toContain('/added');
    }
  });

  it('SIGTERM drains every worker and exits 0', async () => {
    const slow = httpRequest(`${gateway.url}/slow`);
    await sleep(200);
    const stopped = await gateway.stop(20_000);
    expect(stopped).toMatchObject({ code: 0, forced: false });
    expect((await slow).status).toBe(200);
  });
});
