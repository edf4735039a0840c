// Active health checks (src/resilience/health-check.ts) against a fake dispatcher, with fake
// timers: a probe every `interval`; `unhealthyAfter` consecutive failures take the backend out,
// `healthyAfter` consecutive passes bring it back.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Dispatcher } from 'undici';
import { HealthMonitor } from '../../src/resilience/health-check.js';
import type { HealthCheckPolicy } from '../../src/resilience/policy.js';

const T0 = Date.parse('2026-07-01T00:00:00Z');

function healthPolicy(overrides: Partial<HealthCheckPolicy> = {}): HealthCheckPolicy {
  return {
    path: '/health',
    method: 'GET',
    interval: 5_000,
    timeout: 1_000,
    unhealthyAfter: 3,
    healthyAfter: 2,
    statuses: undefined,
    key: 'k',
    ...overrides,
  };
}

/** A backend whose health endpoint answers the next status from `answers` (the last one repeats). */
function fakeBackend(answers: Array<number | Error | 'hang'>) {
  const requests: Dispatcher.RequestOptions[] = [];
  let next = 0;
  const dispatcher = {
    request(options: Dispatcher.RequestOptions) {
      requests.push(options);
      const answer = answers[Math.min(next++, answers.length - 1)]!;
      if (answer === 'hang') return new Promise(() => undefined);
      if (answer instanceof Error) return Promise.reject(answer);
      return Promise.resolve({ statusCode: answer, body: { dump: () => Promise.resolve() } });
    },
  };
  return {
    dispatcher: dispatcher as unknown as Dispatcher,
    requests,
    set: (list: Array<number | Error | 'hang'>) => {
      answers = list;
      next = 0;
    },
  };
}

let monitors: HealthMonitor[] = [];

function monitor(answers: Array<number | Error | 'hang'>, overrides: Partial<HealthCheckPolicy> = {}) {
  const backend = fakeBackend(answers);
  const events: string[] = [];
  const m = new HealthMonitor(
    healthPolicy(overrides),
    { dispatcher: backend.dispatcher, headers: { host: 'api.internal:8080', 'user-agent': 'spillway-health-check' } },
    (passed, changed) => {
      events.push(`${passed ? 'pass' : 'fail'}${changed ? ` → ${m.healthy ? 'healthy' : 'unhealthy'}` : ''}`);
    },
  );
  monitors.push(m);
  return { m, events, backend };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  for (const m of monitors) m.stop();
  monitors = [];
  vi.useRealTimers();
});

describe('probing', () => {
  it('probes at start, then every interval', async () => {
    const { m, backend } = monitor([200]);
    m.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.requests.length).toBe(1);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(backend.requests.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(backend.requests.length).toBe(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(backend.requests.length).toBe(4);
    expect(m.lastProbeAt).toBe(T0 + 15_000);
  });

  it('a probe is an authenticated-looking GET of the configured path, bounded by the timeout', async () => {
    const { m, backend } = monitor([200], { path: '/ready', method: 'HEAD', timeout: 750 });
    await m.probe();
    const sent = backend.requests[0]!;
    expect([sent.path, sent.method, sent.headersTimeout, sent.bodyTimeout]).toEqual(['/ready', 'HEAD', 750, 750]);
    expect(sent.headers).toEqual({ host: 'api.internal:8080', 'user-agent': 'spillway-health-check' });
    expect(sent.signal).toBeInstanceOf(AbortSignal);
  });

  it('a slow backend is not probed twice at once', async () => {
    const { m, backend, events } = monitor(['hang']);
    m.start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(backend.requests.length).toBe(1);
    expect(events).toEqual([]);
  });

  it('after stop, no probe is sent and a probe in flight is not recorded', async () => {
    const { m, backend, events } = monitor([500]);
    m.start();
    m.stop();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(backend.requests.length).toBe(1);
    expect(events).toEqual([]);
    expect(m.consecutiveFailures).toBe(0);
    m.start(); // a stopped monitor stays stopped
    await vi.advanceTimersByTimeAsync(30_000);
    expect(backend.requests.length).toBe(1);
  });
});

describe('healthy → unhealthy → healthy', () => {
  it('a backend starts healthy and goes unhealthy on the unhealthyAfter-th failure in a row', async () => {
    const { m, events } = monitor([503]);
    expect(m.healthy).toBe(true);
    m.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(m.healthy).toBe(true);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(m.healthy).toBe(false);
    expect(events).toEqual(['fail', 'fail', 'fail → unhealthy']);
    expect(m.lastError).toBe('status 503');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(events).toEqual(['fail', 'fail', 'fail → unhealthy', 'fail']); // reported once
  });

  it('a pass in between starts the failure count again', async () => {
    const { m, events } = monitor([500, 500, 200, 500, 500, 500]);
    m.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(25_000);
    expect(events).toEqual(['fail', 'fail', 'pass', 'fail', 'fail', 'fail → unhealthy']);
  });

  it('healthyAfter passes in a row bring it back; a failure in between starts over', async () => {
    const { m, events } = monitor([500, 500, 500, 200, 500, 200, 200]);
    m.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(events).toEqual(['fail', 'fail', 'fail → unhealthy', 'pass', 'fail', 'pass', 'pass → healthy']);
    expect(m.healthy).toBe(true);
    expect(m.lastError).toBeUndefined();
  });

  it('a connection error counts as a failure and is kept as lastError', async () => {
    const { m, events } = monitor([new Error('connect ECONNREFUSED 10.0.0.7:8080')], { unhealthyAfter: 1 });
    await m.probe();
    expect(events).toEqual(['fail → unhealthy']);
    expect(m.lastError).toBe('connect ECONNREFUSED 10.0.0.7:8080');
  });

  it('without a status list any 2xx or 3xx passes', async () => {
    const verdicts: boolean[] = [];
    for (const status of [199, 200, 204, 302, 399, 400, 404, 500]) {
      const { m } = monitor([status], { unhealthyAfter: 1 });
      await m.probe();
      verdicts.push(m.healthy);
    }
    expect(verdicts).toEqual([false, true, true, true, true, false, false, false]);
  });

  it('with a status list only those pass', async () => {
    const verdicts: boolean[] = [];
    for (const status of [200, 204, 401]) {
      const { m } = monitor([status], { unhealthyAfter: 1, statuses: new Set([204, 401]) });
      await m.probe();
      verdicts.push(m.healthy);
    }
    expect(verdicts).toEqual([false, true, true]);
  });
});

describe('when it could be back', () => {
  it('healthyAgainAt is the last probe plus one interval per pass still needed', async () => {
    const { m, backend } = monitor([500], { unhealthyAfter: 1, healthyAfter: 3, interval: 5_000 });
    expect(m.healthyAgainAt).toBe(0);
    m.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(m.healthyAgainAt).toBe(T0 + 15_000);
    backend.set([200]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(m.healthyAgainAt).toBe(T0 + 5_000 + 10_000);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(m.healthyAgainAt).toBe(T0 + 10_000 + 5_000);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(m.healthy).toBe(true);
    expect(m.healthyAgainAt).toBe(0);
  });
});
