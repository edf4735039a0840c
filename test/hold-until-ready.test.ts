// Hold until ready (throttle.hold): when every backend is cooling and the soonest is back within
// maxWait, the request waits and is sent then, instead of a 429.

import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { startGateway } from './helpers/gateway.js';
import { perTest } from './helpers/per-test.js';
import { recordingObserver, served, startSwitchable, type Behaviour } from './helpers/resilience.js';
import { scrape } from './helpers/telemetry.js';
import { sleep, waitUntil } from './helpers/wait.js';

const live = perTest();

/** Accepts `perWindow` requests, then 429 with retry-after-ms until `windowMs` after its first refusal. */
function windowed(perWindow: number, windowMs: number): Behaviour {
  let used = 0;
  let resetAt = 0;
  return (_req, res) => {
    const now = Date.now();
    if (resetAt !== 0 && now >= resetAt) {
      used = 0;
      resetAt = 0;
    }
    if (used < perWindow) {
      used++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
      return;
    }
    if (resetAt === 0) resetAt = now + windowMs;
    res.writeHead(429, { 'retry-after-ms': String(resetAt - now) });
    res.end();
  };
}

const config = (url: string, hold: string, routeExtra = '') => `upstreams:
  llm:
    backends: [ { url: ${url} } ]
    throttle: { ${hold} }
routes:
  - upstream: llm
${routeExtra}`;

const get = async (url: string) => {
  const started = Date.now();
  const res = await fetch(url);
  const body = await res.text();
  return { status: res.status, body, headers: res.headers, ms: Date.now() - started };
};

describe('hold until ready', () => {
  it('holds a request while every backend cools and sends it when the backend is ready; without hold: 429 at once', async () => {
    const backend = await startSwitchable('b', windowed(1, 300));
    live.backends = [backend];
    live.gateway = await startGateway(`log: { requests: { sample: 1 } }\n${config(backend.url, 'hold: { maxWait: 2s, queue: 10 }')}`);
    expect((await get(`${live.gateway.url}/a`)).status).toBe(200);
    expect((await get(`${live.gateway.url}/b`)).status).toBe(200); // 429 → cooled → held → sent when ready
    const held = await get(`${live.gateway.url}/c`); // backend cooling: held before any call
    expect(held.status).toBe(200);
    expect(held.ms).toBeGreaterThan(100);
    expect(held.ms).toBeLessThan(1500);
    await waitUntil(() => live.gateway!.logs.events('request').length >= 3, { message: 'request log lines' });
    const logged = live.gateway.logs.events('request');
    expect(logged[0]!.heldMs).toBeUndefined();
    expect(logged[2]!.heldMs).toBeGreaterThan(100);

    await live.gateway.close();
    const plain = await startSwitchable('p', windowed(1, 300));
    live.backends.push(plain);
    live.gateway = await startGateway(config(plain.url, ''));
    expect((await get(`${live.gateway.url}/a`)).status).toBe(200);
    const refused = await get(`${live.gateway.url}/b`);
    expect(refused.status).toBe(429);
    expect(refused.ms).toBeLessThan(250);
  });

  it('does not hold when the soonest backend is back later than maxWait: 429 at once with Retry-After', async () => {
    const backend = await startSwitchable('b', windowed(0, 3_000));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, 'hold: { maxWait: 500ms }'));
    const res = await get(`${live.gateway.url}/x`);
    expect(res.status).toBe(429);
    expect(res.ms).toBeLessThan(400);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(JSON.parse(res.body)).toMatchObject({ type: 'urn:spillway:problem:all-backends-throttled' });
  });

  it("does not hold past the request's own deadline (retry.deadline)", async () => {
    const backend = await startSwitchable('b', windowed(0, 1_000));
    live.backends = [backend];
    live.gateway = await startGateway(`upstreams:
  llm:
    backends: [ { url: ${backend.url} } ]
    throttle: { hold: { maxWait: 2s } }
    retry: { deadline: 500ms }
routes:
  - upstream: llm
`);
    const res = await get(`${live.gateway.url}/x`);
    expect(res.status).toBe(429);
    expect(res.ms).toBeLessThan(400);
  });

  it('a full hold queue answers at once; an expired hold takes the route fallback', async () => {
    const backend = await startSwitchable('b', windowed(0, 800));
    live.backends = [backend];
    const recorder = recordingObserver();
    live.gateway = await startGateway(
      config(backend.url, 'hold: { maxWait: 1s, queue: 1 }', '    fallback: { status: 200, body: degraded }'),
      { observer: recorder.observer },
    );
    // First: 429 → cooling 800 ms → held (queue 1/1). Second, while the first is held: queue full → fallback at once.
    const first = get(`${live.gateway.url}/one`);
    await waitUntil(() => recorder.events.some((e) => e.type === 'attempt' && e.value === 'throttled'), { message: 'first throttled' });
    await sleep(20);
    const second = await get(`${live.gateway.url}/two`);
    expect(second).toMatchObject({ status: 200, body: 'degraded' });
    expect(second.ms).toBeLessThan(300);
    // The first is released at 800 ms and throttled again for 800 ms: past its maxWait, so not held again → fallback.
    const firstAnswer = await first;
    expect(firstAnswer).toMatchObject({ status: 200, body: 'degraded' });
    expect(firstAnswer.ms).toBeGreaterThan(700);
    expect(recorder.of('hold')).toEqual(['queue-full', 'released']);
    expect(served(backend)).toBe(2);
  });

  it('a request whose maxWait is spent while the backend still refuses is answered by the fallback', async () => {
    const backend = await startSwitchable('b', windowed(0, 600));
    live.backends = [backend];
    const recorder = recordingObserver();
    live.gateway = await startGateway(config(backend.url, 'hold: { maxWait: 1s }', '    fallback: { status: 200, body: degraded }'), {
      observer: recorder.observer,
    });
    const answer = await get(`${live.gateway.url}/one`);
    expect(answer).toMatchObject({ status: 200, body: 'degraded' });
    expect(recorder.of('hold')).toEqual(['released']);
    // Short cooldowns but a backend that keeps refusing: held again and again until maxWait is spent.
    backend.behaviour = windowed(0, 300);
    await sleep(700);
    const calls = served(backend);
    const spent = await get(`${live.gateway.url}/two`);
    expect(spent).toMatchObject({ status: 200, body: 'degraded' });
    expect(spent.ms).toBeGreaterThan(800);
    expect(spent.ms).toBeLessThan(1500);
    expect(served(backend) - calls).toBeGreaterThanOrEqual(3);
  });

  it('a client that disconnects leaves the queue and its request is never sent', async () => {
    const backend = await startSwitchable('b', windowed(1, 400));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, 'hold: { maxWait: 2s }'));
    expect((await get(`${live.gateway.url}/a`)).status).toBe(200);
    expect((await get(`${live.gateway.url}/b`)).status).toBe(200); // held behind the 429, then served
    const before = served(backend);
    const controller = new AbortController();
    const gone = fetch(`${live.gateway.url}/gone`, { signal: controller.signal }).catch(() => 'aborted');
    await sleep(50);
    controller.abort();
    expect(await gone).toBe('aborted');
    await sleep(600);
    // Sent once (its 429 put it on hold), never again after the client left.
    expect(backend.received.slice(before).filter((r) => r.url === '/gone')).toHaveLength(1);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_held_requests', { upstream: 'llm' })).toBe(0);
  });

  it('releases a held burst paced by what the backend accepted in its last window', async () => {
    // 5 per window; 20 concurrent requests. Without pacing every release would hit the backend at once.
    const backend = await startSwitchable('b', windowed(5, 200));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, 'hold: { maxWait: 5s, queue: 100 }'));
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${live.gateway!.url}/r${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const calls = served(backend);
    // 20 accepted + the 429s that taught the cooldowns: a handful, not one per request per window.
    expect(calls).toBeLessThanOrEqual(20 + 8);
    const metrics = await scrape(live.gateway.adminUrl);
    expect(metrics.value('spillway_hold_outcomes_total', { upstream: 'llm', outcome: 'released' })).toBeGreaterThan(0);
    expect(metrics.value('spillway_hold_seconds_count', { upstream: 'llm', outcome: 'released' })).toBeGreaterThan(0);
  });

  it('reload: held requests stay held when their upstream stays; an upstream removed answers them 503', async () => {
    const backend = await startSwitchable('b', windowed(0, 700));
    live.backends = [backend];
    live.gateway = await startGateway(config(backend.url, 'hold: { maxWait: 5s }'));
    const parse = (yaml: string) => parseConfigText(`listen: { host: 127.0.0.1, port: 0 }\n${yaml}`, 'r.yaml', {}).config;
    const held = get(`${live.gateway.url}/x`);
    await sleep(100);
    // Same upstream: still held, then served once the backend accepts.
    live.gateway.gateway.apply(parse(config(backend.url, 'hold: { maxWait: 5s }')), 'r.yaml');
    backend.behaviour = (_req, res) => void res.writeHead(200).end('late');
    expect(await held).toMatchObject({ status: 200, body: 'late' });

    backend.behaviour = windowed(0, 2_000);
    const dropped = get(`${live.gateway.url}/y`);
    await sleep(100);
    live.gateway.gateway.apply(parse(config(backend.url, '').replace(/llm/g, 'other')), 'r.yaml');
    const answer = await dropped;
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:spillway:problem:held-upstream-removed' });
  });

  it('shutdown: held requests wait until the drain deadline, then get 503 with Retry-After', async () => {
    const backend = await startSwitchable('b', windowed(0, 5_000));
    live.backends = [backend];
    const gateway = await startGateway(config(backend.url, 'hold: { maxWait: 4s }').replace('maxWait: 4s', 'maxWait: 6s'));
    const held = get(`${gateway.url}/x`);
    await sleep(100);
    const closed = gateway.gateway.close(600);
    const answer = await held;
    await closed;
    expect(answer.status).toBe(503);
    expect(answer.ms).toBeGreaterThan(550);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:spillway:problem:shutting-down' });
  });
});
