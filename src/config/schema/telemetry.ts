// Telemetry config: logs (level, per-request lines, decision event buffer, redaction) and
// Prometheus metrics. Traces are configured through the standard OTEL_* environment variables.

import { z } from 'zod';

const headerName = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: 'not a valid header name' })
  .toLowerCase();

export const requestLogSchema = z.strictObject({
  sample: z
    .number()
    .min(0)
    .max(1)
    .default(0)
    .meta({ description: 'Fraction of requests written as one JSON log line each (0 = none, the default; 1 = all).' }),
  idHeader: headerName.default('x-request-id').meta({
    description:
      'Request id header: kept when the client sends one, generated otherwise; forwarded to the backend and returned to the client.',
  }),
});

export const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  requests: requestLogSchema.prefault({}),
  events: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(200)
    .meta({ description: 'How many recent decision events GET /admin/events keeps (0 = none).' }),
  redact: z.array(headerName).default([]).meta({
    description: 'Extra header names whose values never reach a log line (authorization, cookies and API keys always are redacted).',
  }),
});

export const metricsSchema = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'Serve Prometheus metrics at GET /metrics on the admin listener.' }),
  process: z.boolean().default(true).meta({ description: 'Include the default process and Node.js runtime metrics.' }),
});

export type LogConfig = z.output<typeof logSchema>;
export type MetricsConfig = z.output<typeof metricsSchema>;
