// Operators drain, disable and enable backends at run time through the admin API.

import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { httpRequest } from './helpers/http.js';
import { waitUntil } from './helpers/wait.js';

let gw: TestGateway | undefined;
let backends: TestBackend[] = [];
afterEach(async () => {
  await closeAll(gw, ...backends);
  gw = undefined;
  backends = [];
});

const json = { 'content-type': 'application/json' };

async function setup(extra = '') {
  const slow = await startBackend(async (_req, res) => {
    // Long enough to be still in flight when the drain comes, even on a busy machine.
    await new Promise((r) => setTimeout(r, 1_500));
    res.end('slow-done');
  }, 'a');
  const other = await startBackend(undefined, 'b');
  backends = [slow, other];
  gw = await startGateway(`
upstreams:
  pool:
    balance: round-robin
    backends:
      - { name: a, url: ${slow.url} }
      - { name: b, url: ${other.url} }
${extra}
routes:
  - { match: { path: / }, upstream: pool }
`);
  return { slow, other, gw };
}

describe('backend admin: drain, disable, enable', () => {
  it('drain lets the request in flight finish and sends no new one; enable brings it back', async () => {
    const { slow, other, gw } = await setup();
    // Round robin: the first request goes to a (slow); drain a while it is in flight.
    const inFlight = httpRequest(`${gw.url}/first`);
    await waitUntil(() => slow.received.length === 1, { message: 'the first request to reach backend a' });
    const drained = await httpRequest(`${gw.adminUrl}/admin/backends/pool:a/drain`, { method: 'POST', headers: json, body: '{}' });
    expect(drained.status).toBe(200);
    expect(JSON.parse(drained.body)).toMatchObject({ id: 'pool:a', mode: 'drain', changed: true, inFlight: 1 });
    for (let i = 0; i < 6; i++) expect((await httpRequest(`${gw.url}/x${i}`)).status).toBe(200);
    expect(slow.received).toHaveLength(1);
    expect(other.received).toHaveLength(6);
    const first = await inFlight;
    expect(first.status).toBe(200);
    expect(first.body).toBe('slow-done');

    const view = JSON.parse((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).body);
    expect(view.upstreams.pool.backends[0]).toMatchObject({ id: 'pool:a', state: 'draining', adminMode: 'drain' });
    const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/spillway_backend_admin_mode\{upstream="pool",backend="a"\} 1/);

    expect((await httpRequest(`${gw.adminUrl}/admin/backends/pool:a/enable`, { method: 'POST', headers: json })).status).toBe(200);
    for (let i = 0; i < 4; i++) await httpRequest(`${gw.url}/y${i}`);
    expect(slow.received.length).toBeGreaterThan(1);
  });

  it('disable survives a reload; all backends off answers 503; unknown ids answer a problem 404', async () => {
    const { slow, other, gw } = await setup();
    for (const id of ['pool:a', 'pool:1']) {
      expect((await httpRequest(`${gw.adminUrl}/admin/backends/${id}/disable`, { method: 'POST', headers: json })).status).toBe(200);
    }
    gw.gateway.apply(gw.gateway.snapshot.config, 'reloaded.yaml');
    const answer = await httpRequest(`${gw.url}/z`);
    expect(answer.status).toBe(503);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(slow.received.length + other.received.length).toBe(0);
    const missing = await httpRequest(`${gw.adminUrl}/admin/backends/pool:nope/drain`, { method: 'POST', headers: json });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).type).toBe('urn:spillway:problem:backend-not-found');
    const badAction = await httpRequest(`${gw.adminUrl}/admin/backends/pool:a/explode`, { method: 'POST', headers: json });
    expect(badAction.status).toBe(404);
  });

  it('a write without a JSON content type is refused by the tokenless admin guard', async () => {
    const { gw } = await setup();
    const refused = await httpRequest(`${gw.adminUrl}/admin/backends/pool:a/drain`, { method: 'POST' });
    expect(refused.status).toBe(403);
    const view = JSON.parse((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).body);
    expect(view.upstreams.pool.backends[0].adminMode).toBe('active');
  });
});
