// The backend-state bus on a real six-node Redis Cluster: the stored keys share one slot
// ("{bus}" hash tag), PUBLISH inside the script reaches subscribers on every node, and a replica
// that starts later reads the stored picture.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { httpRequest } from '../helpers/http.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { waitUntil } from '../helpers/wait.js';

let cluster: TestRedisCluster;
const gateways: TestGateway[] = [];
let a: TestBackend;
let b: TestBackend;

beforeAll(async () => {
  cluster = await startRedisCluster();
  let first = true;
  a = await startBackend((_req, res) => {
    if (first) {
      first = false;
      res.writeHead(429, { 'retry-after-ms': '5000' });
      res.end('busy');
    } else res.end(JSON.stringify({ backend: 'a' }));
  }, 'a');
  b = await startBackend(undefined, 'b');
});

afterAll(async () => {
  await closeAll(...gateways, a, b);
  await cluster.stop();
});

const yaml = () => `
redis: { cluster: [${cluster.seeds.map((seed) => `"${seed}"`).join(', ')}], keyPrefix: "bus-c:" }
upstreams:
  pool:
    backends:
      - { name: a, url: ${a.url}, priority: 1 }
      - { name: b, url: ${b.url}, priority: 2 }
routes:
  - { match: { path: / }, upstream: pool }
`;

const state = async (gw: TestGateway) =>
  JSON.parse((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).body).upstreams.pool.backends[0] as Record<string, unknown>;

describe('shared backend state on a Redis Cluster', () => {
  it('a cooldown and a drain reach the other replicas, and a late replica reads them', async () => {
    for (let i = 0; i < 3; i++) gateways.push(await startGateway(yaml()));
    const [one, two, three] = gateways;
    expect((await httpRequest(`${one!.url}/x`)).status).toBe(200);
    // The 50 ms figure is measured in scale-out-replicas.test.ts; here: that the news gets through a cluster.
    for (const gw of [two!, three!]) {
      await waitUntil(async () => (await state(gw)).state === 'cooling', {
        timeout: 2_000,
        message: 'the cooldown to reach every replica',
      });
      expect(JSON.parse((await httpRequest(`${gw.url}/y`)).body).backend).toBe('b');
    }
    expect(a.received).toHaveLength(1);
    await httpRequest(`${two!.adminUrl}/admin/backends/pool:b/drain`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const drained = async (gw: TestGateway) =>
      JSON.parse((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).body).upstreams.pool.backends[1].adminMode === 'drain';
    for (const gw of [one!, three!]) await waitUntil(() => drained(gw), { timeout: 2_000, message: 'the drain to reach every replica' });
    const late = await startGateway(yaml());
    gateways.push(late);
    expect(await state(late)).toMatchObject({ state: 'cooling' });
    for (const gw of [one!, three!, late]) {
      const view = JSON.parse((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).body);
      expect(view.upstreams.pool.backends[1].adminMode).toBe('drain');
    }
  });
});
