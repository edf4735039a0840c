// Compiled (immutable) resilience policies of one upstream, built from its config block.
// Absent blocks stay undefined so the request path can skip them with one check.

import type { BreakerConfig, ConcurrencyConfig, HealthCheckConfig, RetryConfig } from '../config/schema/resilience.js';

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
  readonly connectError: boolean;
  readonly timeout: boolean;
  readonly statuses: ReadonlySet<number>;
  readonly maxRetries: number;
  readonly budget: number;
  readonly minRetries: number;
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
  retry?: RetryConfig | undefined;
  concurrency?: ConcurrencyConfig | undefined;
  timeouts: { headers: number };
}

export function compileResilience(config: ResilienceConfigBlocks): UpstreamResilience {
  const { breaker, healthCheck, retry, concurrency } = config;
  return {
    breaker: breaker && { ...breaker, statuses: new Set(breaker.statuses), key: JSON.stringify(breaker) },
    healthCheck: healthCheck && {
      ...healthCheck,
      statuses: healthCheck.statuses && new Set(healthCheck.statuses),
      key: JSON.stringify(healthCheck),
    },
    retry: retry && {
      connectError: retry.on.includes('connect-error'),
      timeout: retry.on.includes('timeout'),
      statuses: new Set(retry.on.filter((item): item is number => typeof item === 'number')),
      maxRetries: retry.maxRetries,
      budget: retry.budget,
      minRetries: retry.minRetries,
      deadline: retry.deadline ?? config.timeouts.headers * (retry.maxRetries + 1),
      backoffBase: retry.backoff.base,
      backoffMax: retry.backoff.max,
    },
    concurrency: concurrency && { ...concurrency },
  };
}
