import { describe, expect, it } from 'vitest';
import { startJsonBackend } from './helpers/aggregate.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';

const live = perTest();

interface Problem {
  type: string;
  status: number;
  [key: string]: unknown;
}

describe("aggregate parts get the upstream's resilience features", () => {
  it('a part whose backend answers 502 is retried on another backend of its pool', async () => {
    const flaky = await startJsonBackend(() => ({ status: 502, body: { error: 'bad gateway' } }), 'flaky');
    const good = await startJsonBackend(() => ({ body: { from: 'good' } }), 'good');
    live.backends = [flaky, good];
    live.gateway = await startGateway(`upstreams:
  recs:
    backends: [{ url: ${flaky.url}, priority: 1 }, { url: ${good.url}, priority: 2 }]
    retry: { on: [502] }
routes:
  - match: { path: /dash }
    aggregate:
      parts:
        recs: { upstream: recs, path: /r, required: true }
`);
    const res = await fetch(`${live.gateway.url}/dash`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ recs: { from: 'good' } });
    expect(flaky.received).toHaveLength(1);
    expect(good.received).toHaveLength(1);
  });

  it('an open breaker keeps a failing backend out: the part fails at once without calling it; a required one passes the 503 and Retry-After on', async () => {
    const failing = await startJsonBackend(() => ({ status: 500, body: { error: 'boom' } }), 'failing');
    const users = await startJsonBackend(() => ({ body: { id: 1 } }), 'users');
    live.backends = [failing, users];
    live.gateway = await startGateway(`upstreams:
  users: { backends: [{ url: ${users.url} }] }
  recs:
    backends: [{ url: ${failing.url} }]
    breaker: { failureRate: 50%, minRequests: 2, window: 10s, openFor: 30s }
routes:
  - match: { path: /opt }
    aggregate:
      parts:
        profile: { upstream: users, path: /u, required: true }
        recs: { upstream: recs, path: /r }
  - match: { path: /req }
    aggregate:
      parts:
        recs: { upstream: recs, path: /r, required: true }
`);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${live.gateway.url}/opt`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { _errors: Record<string, Problem> })._errors.recs).toMatchObject({
        type: 'urn:spillway:problem:aggregate-part-status',
        upstreamStatus: 500,
      });
    }
    expect(failing.received).toHaveLength(2);

    const open = await fetch(`${live.gateway.url}/opt`);
    expect(open.status).toBe(200);
    expect(open.headers.get('spillway-partial')).toBe('recs');
    const body = (await open.json()) as { profile: unknown; _errors: Record<string, Problem> };
    expect(body.profile).toEqual({ id: 1 });
    expect(body._errors.recs).toMatchObject({ type: 'urn:spillway:problem:all-backends-unavailable', part: 'recs', upstream: 'recs' });

    const required = await fetch(`${live.gateway.url}/req`);
    expect(required.status).toBe(503);
    expect(Number(required.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await required.json()) as Problem).toMatchObject({ type: 'urn:spillway:problem:all-backends-unavailable', part: 'recs' });
    expect(failing.received).toHaveLength(2);
  });
});
