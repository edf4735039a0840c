// Weighted splits: proportions, sticky clients, and how few clients move when weights change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestView } from '../src/routing/request-view.js';
import { compileSplit, pickSplit, rendezvousPick } from '../src/routing/split.js';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

const split = (v2: number, legacy: number, stickyBy?: string) =>
  compileSplit(
    [
      { target: 'users-v2', name: 'users-v2', weight: v2 },
      { target: 'legacy', name: 'legacy', weight: legacy },
    ],
    stickyBy,
  );

const request = (headers: Record<string, string> = {}, ip = '10.0.0.1') => new RequestView('GET', '/api/users/1', '', headers, ip);

describe('split proportions', () => {
  it('10/90 sends about 10% to the canary', () => {
    const s = split(10, 90);
    const random = seeded(7);
    let v2 = 0;
    for (let i = 0; i < 20_000; i++) if (pickSplit(s, request(), random).target === 'users-v2') v2++;
    expect(v2 / 20_000).toBeGreaterThan(0.09);
    expect(v2 / 20_000).toBeLessThan(0.11);
  });

  it('sticky keys spread by weight too', () => {
    const s = split(10, 90, 'header:x-user-id');
    let v2 = 0;
    for (let i = 0; i < 20_000; i++) if (pickSplit(s, request({ 'x-user-id': `user-${i}` }), Math.random).target === 'users-v2') v2++;
    expect(v2 / 20_000).toBeGreaterThan(0.09);
    expect(v2 / 20_000).toBeLessThan(0.11);
  });

  it('a zero weight gets nothing', () => {
    const s = split(0, 1);
    for (let i = 0; i < 1000; i++) expect(pickSplit(s, request({}), Math.random).target).toBe('legacy');
    for (let i = 0; i < 1000; i++) expect(rendezvousPick(s.choices, `k${i}`).target).toBe('legacy');
  });
});

describe('sticky clients', () => {
  it.each([
    ['header:x-user-id', (id: string) => request({ 'x-user-id': id })],
    ['cookie:session', (id: string) => request({ cookie: `theme=dark; session=${id}` })],
    ['ip', (id: string) => request({}, id)],
  ])('%s: the same client always lands on the same side', (stickyBy, make) => {
    const s = split(50, 50, stickyBy);
    for (let i = 0; i < 200; i++) {
      const first = pickSplit(s, make(`client-${i}`), Math.random).target;
      for (let j = 0; j < 5; j++) expect(pickSplit(s, make(`client-${i}`), Math.random).target).toBe(first);
    }
  });

  it('a request without the sticky key is split by weight', () => {
    const s = split(50, 50, 'header:x-user-id');
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(pickSplit(s, request(), Math.random).target);
    expect(seen.size).toBe(2);
  });

  it('raising the canary from 10% to 20% moves only clients onto the canary, about 10% of them', () => {
    const before = split(10, 90, 'header:x-user-id');
    const after = split(20, 80, 'header:x-user-id');
    let moved = 0;
    let movedAway = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const r = request({ 'x-user-id': `user-${i}` });
      const a = pickSplit(before, r, Math.random).target;
      const b = pickSplit(after, r, Math.random).target;
      if (a !== b) moved++;
      if (a === 'users-v2' && b === 'legacy') movedAway++;
    }
    expect(movedAway).toBe(0);
    expect(moved / n).toBeGreaterThan(0.08);
    expect(moved / n).toBeLessThan(0.12);
  });

  it('adding a third side takes its share from both, leaving the rest in place', () => {
    const two = compileSplit(
      [
        { target: 'a', name: 'a', weight: 1 },
        { target: 'b', name: 'b', weight: 1 },
      ],
      'ip',
    );
    const three = compileSplit(
      [
        { target: 'a', name: 'a', weight: 1 },
        { target: 'b', name: 'b', weight: 1 },
        { target: 'c', name: 'c', weight: 1 },
      ],
      'ip',
    );
    let moved = 0;
    for (let i = 0; i < 9000; i++) {
      const a = rendezvousPick(two.choices, `10.1.${i >> 8}.${i & 255}`).target;
      const b = rendezvousPick(three.choices, `10.1.${i >> 8}.${i & 255}`).target;
      if (a !== b) {
        moved++;
        expect(b).toBe('c');
      }
    }
    expect(moved / 9000).toBeGreaterThan(0.28);
    expect(moved / 9000).toBeLessThan(0.39);
  });
});

describe('split through the gateway', () => {
  let v2: TestBackend;
  let legacy: TestBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    v2 = await startBackend(undefined, 'users-v2');
    legacy = await startBackend(undefined, 'legacy');
    gw = await startGateway(`
upstreams:
  users-v2: { backends: [ { url: ${v2.url} } ] }
  legacy: { backends: [ { url: ${legacy.url} } ] }
routes:
  - name: users-canary
    match: { path: /api/users/:id }
    split: [ { upstream: users-v2, weight: 30 }, { upstream: legacy, weight: 70 } ]
    stickyBy: header:x-user-id
`);
  });
  afterAll(() => closeAll(gw, v2, legacy));

  it('spreads by weight, keeps each user on one side, and counts per side', async () => {
    const sides = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const response = await fetch(`${gw.url}/api/users/${i}`, { headers: { 'x-user-id': `u${i}` } });
          const side = ((await response.json()) as { backend: string }).backend;
          if (round === 0) sides.set(`u${i}`, side);
          else expect(side).toBe(sides.get(`u${i}`));
        }),
      );
    }
    const canary = [...sides.values()].filter((s) => s === 'users-v2').length;
    expect(canary).toBeGreaterThan(15);
    expect(canary).toBeLessThan(45);
    const view = (await (await fetch(`${gw.adminUrl}/admin/routes`)).json()) as {
      routes: Array<{ split: Array<{ upstream: string; requests: number }> }>;
    };
    const [toV2, toLegacy] = view.routes[0]!.split;
    expect(toV2).toMatchObject({ upstream: 'users-v2', requests: canary * 3 });
    expect(toLegacy).toMatchObject({ upstream: 'legacy', requests: (100 - canary) * 3 });
  });
});
