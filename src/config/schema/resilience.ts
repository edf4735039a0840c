// Resilience settings: per-upstream breaker, health checks, retries and concurrency
// limits; per-route fallback; process-wide shutdown drain. Each upstream block is optional and
// does nothing (and costs nothing per request) until it is present.

import { z } from 'zod';
import { duration, percent } from './units.js';

const status5xx = z.number().int().min(500).max(599);

export const breakerSchema = z.strictObject({
  failureRate: percent.prefault('50%').meta({ description: 'Opens when the share of failures in the window is above this.' }),
  minRequests: z
    .number()
    .int()
    .positive()
    .max(1_000_000)
    .default(20)
    .meta({ description: 'No decision before this many requests in the window (a blip never trips it).' }),
  window: duration.default(10_000).meta({ description: 'Rolling window the failure rate is measured over.' }),
  openFor: duration.default(30_000).meta({ description: 'How long an open breaker keeps the backend out before half-open trials.' }),
  halfOpenRequests: z
    .number()
    .int()
    .positive()
    .max(1_000)
    .default(2)
    .meta({ description: 'Trial requests in half-open; all must succeed to close.' }),
  statuses: z
    .array(status5xx)
    .default([500, 502, 503, 504])
    .meta({ description: 'Response statuses counted as failures (timeouts and connection errors always are).' }),
});

export const healthCheckSchema = z.strictObject({
  path: z.string().startsWith('/', { message: 'a path starts with "/"' }).default('/health'),
  method: z.enum(['GET', 'HEAD']).default('GET'),
  interval: duration.default(5_000),
  timeout: duration.default(1_000),
  unhealthyAfter: z.number().int().positive().max(1_000).default(3),
  healthyAfter: z.number().int().positive().max(1_000).default(2),
  statuses: z.array(z.number().int().min(100).max(599)).optional().meta({ description: 'Statuses that pass. Default: any 2xx or 3xx.' }),
});

const retryOn = z.union([
  z.enum(['connect-error', 'timeout']),
  z
    .number()
    .int()
    .min(400)
    .max(599)
    .refine((status) => status !== 429, {
      message: '429 is throttling: it always fails over at once (see throttle), it is not a retry status',
    }),
]);

export const retrySchema = z.strictObject({
  on: z
    .array(retryOn)
    .default(['connect-error', 'timeout', 502, 503, 504])
    .meta({ description: '"connect-error", "timeout" and response statuses that are retried.' }),
  maxRetries: z
    .number()
    .int()
    .min(0)
    .max(100)
    .default(2)
    .meta({ description: 'Failure retries per request (on top of the first attempt).' }),
  budget: percent
    .prefault('20%')
    .meta({ description: 'Retries in flight may be at most this share of the requests in flight (Envoy retry budget).' }),
  minRetries: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(3)
    .meta({ description: 'Retries in flight always allowed, whatever the budget says.' }),
  burst: z.number().int().min(0).max(100_000).default(100).meta({
    description:
      'Retries a backend that fails all at once may get beyond the budget: every request it answers earns `budget` of a retry, up to this many; a retry the budget refuses spends one. Earned only by answers, so a sustained failure gets the budget alone.',
  }),
  deadline: duration
    .optional()
    .meta({ description: 'Bounds all attempts of one request until a response starts. Default: timeouts.headers × (maxRetries + 1).' }),
  backoff: z
    .strictObject({
      base: duration.default(50),
      max: duration.default(1_000),
    })
    .prefault({})
    .meta({ description: 'Same-backend retries (single-backend pools) wait base·2^n with full jitter, at most max.' }),
});

export const concurrencySchema = z.strictObject({
  perBackend: z.number().int().positive().max(1_000_000).default(100).meta({ description: 'Requests in flight per backend.' }),
  queue: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(500)
    .meta({ description: 'Requests that may wait per backend when every backend is full.' }),
  maxWait: duration.default(2_000).meta({ description: 'Longest wait in the queue before 503.' }),
});

/** Fields wired into upstreamSchema. */
export const upstreamResilienceFields = {
  breaker: breakerSchema.optional(),
  healthCheck: healthCheckSchema.optional(),
  retry: z
    .union([z.literal(false), z.literal('off'), retrySchema])
    .optional()
    .meta({
      description:
        'Retries after failures. Absent: safe retries by default (never-received requests to the next backend; idempotent requests once more after a reset). A block adds its `on` list to those defaults. `off` or `false`: only never-received requests fail over.',
    }),
  concurrency: concurrencySchema.optional(),
};

export const fallbackSchema = z
  .strictObject({
    upstream: z.string().min(1).optional().meta({ description: 'Send the request to this upstream instead.' }),
    status: z.number().int().min(200).max(599).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.string().optional(),
  })
  .refine(
    (f) =>
      f.upstream !== undefined
        ? f.status === undefined && f.body === undefined && f.headers === undefined
        : f.status !== undefined || f.body !== undefined,
    {
      message: 'a fallback is either { upstream: NAME } or a static response { status, headers, body }',
    },
  )
  .meta({ description: 'What to answer when no backend of the upstream can take the request.' });

export const shutdownSchema = z.strictObject({
  drain: duration
    .default(15_000)
    .meta({ description: 'On SIGTERM/SIGINT, how long in-flight requests may take before connections are cut.' }),
});

export type BreakerConfig = z.output<typeof breakerSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
/** The upstream's `retry:` value: absent, switched off, or a block. */
export type RetrySetting = RetryConfig | false | 'off' | undefined;
export type ConcurrencyConfig = z.output<typeof concurrencySchema>;
export type FallbackConfig = z.output<typeof fallbackSchema>;
