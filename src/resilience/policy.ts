// Compiled (immutable) resilience policies of one upstream, built from its config block.
// Absent blocks stay undefined so the request path can skip them with one check.

import type { BreakerConfig, ConcurrencyConfig, HealthCheckConfig, RetrySetting } from '../config/schema/resilience.js';

export interface BreakerPolicy {
  readonly failureRate: number;
  readonly minRequests: number;
  readonly window: number;
  readonly openFor: number;
  readonly halfOpenRequests: number;
  readonly statuses: ReadonlySet<number>;
  /** Identity of the settings: a reload with the same key keeps the live breaker. */
  readonly key: string;
}

export interface HealthCheckPolicy {
  readonly path: string;
  readonly method: 'GET' | 'HEAD';
  readonly interval: number;
  readonly timeout: number;
  readonly unhealthyAfter: number;
  readonly healthyAfter: number;
  readonly statuses: ReadonlySet<number> | undefined;
  readonly key: string;
}

export interface RetryPolicy {
  /** The safe defaults of an upstream without a `retry:` block (never-received failover uncounted, no same-backend retry). */
  readonly implicit: boolean;
  readonly connectError: boolean;
  readonly timeout: boolean;
  readonly statuses: ReadonlySet<number>;
  readonly maxRetries: number;
  readonly budget: number;
  readonly minRetries: number;
  /** Retry tokens a backend may save up for a sudden failure of many requests at once. */
  readonly burst: number;
  /** ms bounding all attempts of one request; 0 = none. */
  readonly deadline: number;
  readonly backoffBase: number;
  readonly backoffMax: number;
}

export interface ConcurrencyPolicy {
  readonly perBackend: number;
  readonly queue: number;
  readonly maxWait: number;
}

export interface UpstreamResilience {
  readonly breaker: BreakerPolicy | undefined;
  readonly healthCheck: HealthCheckPolicy | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly concurrency: ConcurrencyPolicy | undefined;
}

export interface ResilienceConfigBlocks {
  breaker?: BreakerConfig | undefined;
  healthCheck?: HealthCheckConfig | undefined;
  retry?: RetrySetting;
  concurrency?: ConcurrencyConfig | undefined;
  timeouts: { headers: number };
}

/**
 * Without a `retry:` block: a request the backend never received goes to the next backend
 * (any method, not counted), an idempotent one whose connection broke before the answer goes
 * once more to another backend, within the budget. No status retries, no deadline.
 */
export const SAFE_RETRIES: RetryPolicy = {
  implicit: true,
  connectError: true,
  timeout: false,
  statuses: new Set(),
  maxRetries: 1,
  budget: 0.2,
  minRetries: 3,
  burst: 100,
  deadline: 0,
  backoffBase: 50,
  backoffMax: 1_000,
};

export function compileResilience(config: ResilienceConfigBlocks): UpstreamResilience {
  const { breaker, healthCheck, retry, concurrency } = config;
  return {
    breaker: breaker && { ...breaker, statuses: new Set(breaker.statuses), key: JSON.stringify(breaker) },
    healthCheck: healthCheck && {
      ...healthCheck,
      statuses: healthCheck.statuses && new Set(healthCheck.statuses),
      key: JSON.stringify(healthCheck),
    },
    retry:
      retry === undefined
        ? SAFE_RETRIES
        : retry === false || retry === 'off'
          ? undefined
          : {
              implicit: false,
              // A written `on:` list adds to the safe defaults (connection failures) rather than replacing them.
              connectError: true,
              timeout: retry.on.includes('timeout'),
              statuses: new Set(retry.on.filter((item): item is number => typeof item === 'number')),
              maxRetries: retry.maxRetries,
              budget: retry.budget,
              minRetries: retry.minRetries,
              burst: retry.burst,
              deadline: retry.deadline ?? config.timeouts.headers * (retry.maxRetries + 1),
              backoffBase: retry.backoff.base,
              backoffMax: retry.backoff.max,
            },
    concurrency: concurrency && { ...concurrency },
  };
}
