// Four gateway processes on one real redis-server, under light load (each replica sends a
// request every ~10 ms). A backend answers 429 `retry-after-ms: 5000` to one request through
// replica A; B, C and D must route around it: their admin views show it cooling and the
// backend's request log shows no call through B, C or D started more than 50 ms after that 429
// during the cooldown. With Redis stopped, no request slows down or fails because of the bus.
// A backend drained through one replica's admin API gets no new request from any replica
// within 50 ms.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from '../helpers/backend.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { httpRequest } from '../helpers/http.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const NAMES = ['A', 'B', 'C', 'D'] as const;
let redis: TestRedis;
let replicas: GatewayProcess[] = [];
let a: TestBackend;
let b: TestBackend;
/** The next request to `a` from this replica gets the 429. */
let throttleNextFrom: string | undefined;
let throttledAt = 0;

beforeAll(async () => {
  redis = await startRedis();
  a = await startBackend((req, res) => {
    if (req.headers['x-replica'] === throttleNextFrom && req.url !== '/health') {
      throttleNextFrom = undefined;
      throttledAt = Date.now();
      res.writeHead(429, { 'retry-after-ms': '5000' });
      res.end('busy');
      return;
    }
    res.end(JSON.stringify({ backend: 'a' }));
  }, 'a');
  b = await startBackend(undefined, 'b');
  replicas = await Promise.all(
    NAMES.map((name) =>
      startGatewayProcess({
        label: `replica ${name}`,
        yaml: `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
redis: { url: "${redis.url}", keyPrefix: "scale-out:" }
upstreams:
  pool:
    headers: { x-replica: "${name}" }
    backends:
      - { name: a, url: ${a.url}, priority: 1 }
      - { name: b, url: ${b.url}, priority: 2 }
routes:
  - { match: { path: / }, upstream: pool }
`,
      }),
    ),
  );
});

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.stop()));
  await closeAll(a, b);
  await redis.stop();
});

interface Sample {
  replica: string;
  status: number;
  ms: number;
}

/** Each replica gets a request every ~10 ms (one at a time) until stop(). */
function lightLoad(only: readonly number[] = [0, 1, 2, 3]) {
  const samples: Sample[] = [];
  let running = true;
  const loops = only.map(async (index) => {
    while (running) {
      const started = Date.now();
      const answer = await httpRequest(`${replicas[index]!.url}/x`).catch(() => ({ status: 0 }));
      samples.push({ replica: NAMES[index]!, status: answer.status, ms: Date.now() - started });
      await sleep(10);
    }
  });
  return {
    samples,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

const view = async (replica: GatewayProcess) =>
  JSON.parse((await httpRequest(`${replica.admin}/admin/upstreams`)).body).upstreams.pool.backends[0] as Record<string, unknown>;

describe('four replicas on one Redis', () => {
  it('a 429 through A: B, C and D route around the backend within 50 ms and show it cooling', async () => {
    const load = lightLoad();
    await sleep(300);
    throttleNextFrom = 'A';
    await waitUntil(() => throttledAt > 0, { message: 'the 429 through A' });
    await sleep(1_000);
    for (const replica of replicas.slice(1)) expect(await view(replica)).toMatchObject({ state: 'cooling' });
    const samples = await load.stop();
    const late = a.received.filter(
      (r) => r.headers['x-replica'] !== 'A' && r.at > throttledAt + 50 && r.at < throttledAt + 5_000 && r.url !== '/health',
    );
    const firstAfter = a.received
      .filter((r) => r.headers['x-replica'] !== 'A' && r.at > throttledAt)
      .map((r) => r.at - throttledAt)
      .sort((x, y) => x - y)[0];
    const lastBefore = a.received
      .filter((r) => r.headers['x-replica'] !== 'A' && r.at <= throttledAt)
      .map((r) => throttledAt - r.at)
      .sort((x, y) => x - y)[0];
    // The load was live up to the 429: B, C and D were calling the backend until then.
    expect(lastBefore).toBeLessThan(200);
    console.log(
      `429 at t0; last call through B/C/D before it: t0-${lastBefore} ms; calls through B/C/D after t0+50 ms during the cooldown: ${late.length}; ` +
        `first call through B/C/D after the 429: ${firstAfter === undefined ? 'none' : `t0+${firstAfter} ms`}; requests: ${samples.length}`,
    );
    expect(late).toEqual([]);
    expect(samples.every((s) => s.status === 200)).toBe(true);
  });

  it('Redis stopped: no request slows down or fails because of the bus', async () => {
    await sleep(4_500); // the earlier cooldown ends
    const before = lightLoad();
    await sleep(1_000);
    const baseline = await before.stop();
    await redis.kill();
    const during = lightLoad();
    await sleep(1_500);
    const samples = await during.stop();
    await redis.restart();
    const p = (list: Sample[], q: number) => list.map((s) => s.ms).sort((x, y) => x - y)[Math.floor((list.length - 1) * q)]!;
    console.log(
      `Redis up: ${baseline.length} requests, p50 ${p(baseline, 0.5)} ms, p95 ${p(baseline, 0.95)} ms, max ${p(baseline, 1)} ms; ` +
        `Redis stopped: ${samples.length} requests, p50 ${p(samples, 0.5)} ms, p95 ${p(samples, 0.95)} ms, max ${p(samples, 1)} ms, failed ${samples.filter((s) => s.status !== 200).length}`,
    );
    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    // A request waiting on the bus would wait a Redis timeout (connectTimeout 1 s, lease 250 ms) or
    // fail; scheduling noise on a busy 2-core machine stays far below that.
    expect(p(samples, 1)).toBeLessThan(500);
    expect(p(samples, 0.95)).toBeLessThanOrEqual(Math.max(50, 3 * p(baseline, 0.95)));
    expect(samples.length).toBeGreaterThan(baseline.length * 0.7);
  });

  it('a backend drained through one replica gets no new request from any replica within 50 ms', async () => {
    // Back on Redis after the restart (each replica reconnects by itself within ~100 ms).
    await sleep(1_000);
    const load = lightLoad();
    await sleep(300);
    const drainedAt = Date.now();
    const answer = await httpRequest(`${replicas[2]!.admin}/admin/backends/pool:a/drain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    expect(answer.status).toBe(200);
    await sleep(1_000);
    for (const replica of replicas) expect(await view(replica)).toMatchObject({ adminMode: 'drain', state: 'draining' });
    const samples = await load.stop();
    const late = a.received.filter((r) => r.at > drainedAt + 50);
    console.log(`drain: requests to a started more than 50 ms after the drain call: ${late.length}`);
    expect(late).toEqual([]);
    expect(samples.every((s) => s.status === 200)).toBe(true);
  });
});
