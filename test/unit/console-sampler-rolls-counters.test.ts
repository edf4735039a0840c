// The console's numbers (src/telemetry/console-sampler.ts, console-tap.ts, latency-histogram.ts):
// rates and last-minute counts come from differences between once-a-second samples of counters
// the gateway keeps anyway; the tap hooks the observer only while someone watches. Fake clock:
// time moves only when a test moves it.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/listener/gateway.js';
import type { CompiledBackend } from '../../src/snapshot/snapshot.js';
import { ConsoleSampler } from '../../src/telemetry/console-sampler.js';
import type { ConsoleView } from '../../src/telemetry/console-view.js';
import type { DecisionEvent } from '../../src/telemetry/event-buffer.js';
import { bucketIndex, emptyHistogram, quantile } from '../../src/telemetry/latency-histogram.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { Writable } from 'node:stream';

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const YAML = `
metrics: { enabled: false }
rateLimits:
  per-key: { key: header:x-api-key, capacity: 10, refill: 1/s }
upstreams:
  llm:
    backends:
      - { url: http://127.0.0.1:1, name: a, priority: 1 }
      - { url: http://127.0.0.1:2, name: b, priority: 2 }
routes:
  - { name: chat, match: { path: /v1/ }, upstream: llm, rateLimit: [per-key] }
`;

let gateway: Gateway;
let sampler: ConsoleSampler;
let a: CompiledBackend;
let b: CompiledBackend;

/** What the request path does for one answered attempt: the counters it always bumps, and the event. */
function attempt(backend: CompiledBackend, status: number, ms: number): void {
  backend.state.requests++;
  if (status === 429) backend.state.throttled++;
  gateway.observer.attempt(gateway.snapshot.upstreams.get('llm')!, backend, status === 429 ? 'throttled' : 'ok', status, ms);
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
  const { config } = parseConfigText(YAML, 'unit.yaml', {});
  const silent = new Writable({ write: (_c, _e, done) => done() });
  gateway = new Gateway(config, { file: 'unit.yaml', logger: createLogger('silent', silent) });
  sampler = new ConsoleSampler({ getSnapshot: () => gateway.snapshot, tap: gateway.telemetry.console, buckets: gateway.limits.memory });
  [a, b] = gateway.snapshot.upstreams.get('llm')!.backends as [CompiledBackend, CompiledBackend];
});

afterEach(async () => {
  vi.useRealTimers();
  await gateway.close(0);
});

function watch(): { views: ConsoleView[]; decisions: DecisionEvent[]; stop: () => void } {
  const views: ConsoleView[] = [];
  const decisions: DecisionEvent[] = [];
  const stop = sampler.subscribe({ view: (view) => views.push(view), decision: (event) => decisions.push(event) });
  return { views, decisions, stop };
}

describe('the latency histogram', () => {
  it('puts a duration in the first bucket whose bound holds it, and reads quantiles inside buckets', () => {
    expect(bucketIndex(0.3)).toBe(0);
    expect(bucketIndex(1)).toBe(0);
    expect(bucketIndex(7)).toBe(3); // (5, 10]
    expect(bucketIndex(999_999)).toBe(14);
    const counts = emptyHistogram();
    counts[bucketIndex(7)]! += 98;
    counts[bucketIndex(400)]! += 2;
    expect(quantile(counts, 0.5)).toBeGreaterThan(5);
    expect(quantile(counts, 0.5)).toBeLessThanOrEqual(10);
    expect(quantile(counts, 0.99)).toBeGreaterThan(200);
    expect(quantile(counts, 0.99)).toBeLessThanOrEqual(500);
    expect(quantile(emptyHistogram(), 0.5)).toBeNull();
  });
});

describe('the console tap', () => {
  it('is not in the request path while nobody watches, and leaves it again with the last client', () => {
    const original = gateway.observer.attempt;
    const timers = vi.getTimerCount();
    const stop = watch().stop;
    expect(vi.getTimerCount()).toBe(timers + 1); // the one sampling timer
    expect(gateway.observer.attempt).not.toBe(original);
    const second = watch().stop;
    stop();
    expect(gateway.observer.attempt).not.toBe(original); // one client still watches
    second();
    expect(gateway.observer.attempt).toBe(original);
    expect(vi.getTimerCount()).toBe(timers); // no sampling timer left behind
  });
});

describe('the sampler', () => {
  it('derives req/s, last-minute status counts, latency quantiles and shares from second-by-second samples', () => {
    const { views } = watch();
    for (let second = 0; second < 10; second++) {
      for (let i = 0; i < 20; i++) attempt(a, 200, 8);
      attempt(b, 200, 300);
      vi.advanceTimersByTime(1_000);
    }
    const view = views.at(-1)!;
    expect(views).toHaveLength(10);
    expect(view.windowSec).toBe(10);
    const [va, vb] = view.upstreams[0]!.backends;
    expect(va).toMatchObject({ label: 'a', priority: 1, state: 'ready', reqPerSec: 20, lastMinute: { ok: 200, throttled: 0, failed: 0 } });
    expect(vb).toMatchObject({ label: 'b', reqPerSec: 1, lastMinute: { ok: 10, throttled: 0, failed: 0 } });
    expect(va!.share).toBeCloseTo(20 / 21, 2);
    expect(va!.p50Ms).toBeGreaterThan(5);
    expect(va!.p50Ms).toBeLessThanOrEqual(10);
    expect(vb!.p99Ms).toBeGreaterThan(200);
    const { chart } = view.upstreams[0]!;
    expect(chart.t).toHaveLength(10);
    expect(chart.shares[0]!.at(-1)).toBeCloseTo(95.2, 0);
    expect(view.routes[0]).toMatchObject({ name: 'chat', action: 'upstream', target: 'llm' });
  });

  it('keeps the counts of the last minute only, and reports a cooling backend with its end', () => {
    const { views } = watch();
    for (let second = 0; second < 90; second++) {
      attempt(a, second < 30 ? 500 : 200, 10);
      vi.advanceTimersByTime(1_000);
    }
    expect(views.at(-1)!.windowSec).toBe(60);
    expect(views.at(-1)!.upstreams[0]!.backends[0]!.lastMinute).toEqual({ ok: 60, throttled: 0, failed: 0 });
    attempt(a, 429, 3);
    a.state.coolDownUntil(Date.now() + 4_000, 'retry-after-ms', '4000', Date.now());
    const cooling = sampler.view().upstreams[0]!.backends[0]!;
    expect(cooling).toMatchObject({ state: 'cooling', cooldownUntil: T0 + 90_000 + 4_000, cooldownSource: 'retry-after-ms' });
    vi.advanceTimersByTime(1_000);
    expect(views.at(-1)!.upstreams[0]!.backends[0]!.lastMinute.throttled).toBe(1);
  });

  it('tells when the traffic moves from priority 1 to priority 2 and back', () => {
    const { decisions } = watch();
    const second = (backend: CompiledBackend) => {
      attempt(backend, 200, 5);
      vi.advanceTimersByTime(1_000);
    };
    second(a);
    second(a);
    second(b);
    second(b);
    second(a);
    expect(decisions.map((d) => [d.event, d.from, d.to])).toEqual([
      ['upstream.failover', 1, 2],
      ['upstream.failover', 2, 1],
    ]);
    expect(decisions[0]!.msg).toBe('traffic spilled from priority 1 to 2');
  });

  it('names the busiest clients by a hash of their key, never the key', () => {
    const { views } = watch();
    const policy = 'per-key';
    const secret = 'sk-very-secret-key';
    for (let i = 0; i < 8; i++)
      gateway.limits.memory.take({ key: `${policy}\u0000${secret}`, capacity: 10, refillPerMs: 0.001, cost: 1, maxWaitMs: 0 });
    gateway.limits.memory.take({ key: `${policy}\u0000quiet`, capacity: 10, refillPerMs: 0.001, cost: 1, maxWaitMs: 0 });
    vi.advanceTimersByTime(1_000);
    const { busiest } = views.at(-1)!.limits;
    expect(busiest).toHaveLength(2);
    expect(busiest[0]).toMatchObject({ policy });
    expect(busiest[0]!.client).toMatch(/^[0-9a-f]{12}$/);
    expect(busiest[0]!.fullInSec).toBeGreaterThan(busiest[1]!.fullInSec);
    expect(JSON.stringify(views)).not.toContain(secret);
  });
});
