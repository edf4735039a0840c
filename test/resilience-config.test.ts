import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { compileResilience, SAFE_RETRIES } from '../src/resilience/policy.js';
import { ROOT } from './helpers/gateway.js';
import { issuesOf, expectCheckPasses } from './helpers/config.js';

const upstream = (extra: string, route = '') => `upstreams:
  orders:
    backends: [ { url: http://127.0.0.1:9101 } ]
${extra}
routes:
  - upstream: orders
${route}`;

describe('resilience config', () => {
  it('config/resilience.yaml passes `spillway check`', async () => {
    await expectCheckPasses(`${ROOT}config/resilience.yaml`);
  });

  it('`{}` takes the documented defaults; absent blocks stay off, except retry (safe retries); retry: off / false turn it off', () => {
    const { config } = parseConfigText(upstream('    breaker: {}\n    healthCheck: {}\n    retry: {}\n    concurrency: {}'), 'g.yaml', {});
    const orders = config.upstreams.orders!;
    expect(orders.breaker).toEqual({
      failureRate: 0.5,
      minRequests: 20,
      window: 10_000,
      openFor: 30_000,
      halfOpenRequests: 2,
      statuses: [500, 502, 503, 504],
    });
    expect(orders.healthCheck).toEqual({
      path: '/health',
      method: 'GET',
      interval: 5_000,
      timeout: 1_000,
      unhealthyAfter: 3,
      healthyAfter: 2,
    });
    expect(orders.retry).toEqual({
      on: ['connect-error', 'timeout', 502, 503, 504],
      maxRetries: 2,
      budget: 0.2,
      minRetries: 3,
      burst: 100,
      backoff: { base: 50, max: 1_000 },
    });
    expect(orders.concurrency).toEqual({ perBackend: 100, queue: 500, maxWait: 2_000 });
    expect(config.shutdown).toEqual({ drain: 15_000 });
    expect(compileResilience(orders).retry!.deadline).toBe(180_000);

    const plain = parseConfigText(upstream(''), 'g.yaml', {}).config.upstreams.orders!;
    expect(compileResilience(plain)).toEqual({ breaker: undefined, healthCheck: undefined, retry: SAFE_RETRIES, concurrency: undefined });
    expect(SAFE_RETRIES).toMatchObject({ implicit: true, connectError: true, timeout: false, maxRetries: 1, deadline: 0 });
    expect(SAFE_RETRIES.statuses.size).toBe(0);
    for (const off of ['off', 'false']) {
      const switchedOff = parseConfigText(upstream(`    retry: ${off}`), 'g.yaml', {}).config.upstreams.orders!;
      expect(compileResilience(switchedOff).retry).toBeUndefined();
    }
    expect(issuesOf(upstream('    retry: on')).map((i) => i.path)).toEqual(['upstreams.orders.retry']);
  });

  it('bad values are reported with file:line:column', () => {
    const issues = issuesOf(upstream('    breaker: { failureRate: 150% }\n    retry: { on: [429] }\n    concurrency: { perBackend: 0 }'));
    expect(issues.map((i) => [i.line, i.path])).toEqual([
      [4, 'upstreams.orders.breaker.failureRate'],
      [5, 'upstreams.orders.retry.on[0]'],
      [6, 'upstreams.orders.concurrency.perBackend'],
    ]);
    expect(issues[1]!.message).toMatch(/429 is throttling/);
  });

  it('a fallback is an upstream or a static response, and the upstream must exist', () => {
    expect(issuesOf(upstream('', '    fallback: { upstream: nope }'))[0]).toMatchObject({
      path: 'routes[0].fallback.upstream',
      message: 'unknown upstream "nope"',
    });
    expect(issuesOf(upstream('', '    fallback: { upstream: orders, status: 200 }'))[0]!.message).toMatch(/either/);
    expect(issuesOf(upstream('', '    fallback: {}'))[0]!.message).toMatch(/either/);
  });
});
