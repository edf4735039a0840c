import { z } from 'zod';
import { upstreamResilienceFields } from './resilience.js';
import { duration, httpUrl, size } from './units.js';
import { removeHeadersSchema, setHeadersSchema } from './headers.js';
import { upstreamTlsSchema } from './tls.js';
import { secret } from './secret.js';

export const backendSchema = z.strictObject({
  url: secret(httpUrl, 'url'),
  priority: z.number().int().positive().max(1_000).default(1).meta({ description: 'Lower is used first; 1 = primary.' }),
  weight: z
    .number()
    .positive()
    .max(1_000_000)
    .default(1)
    .meta({ description: 'Relative share among ready backends of the same priority.' }),
  name: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'Shown in admin output and logs; also the state id, so one URL can be listed twice (e.g. with two API keys).' }),
  headers: setHeadersSchema.optional(),
  removeHeaders: removeHeadersSchema.optional(),
  tls: upstreamTlsSchema.optional(),
});

export const throttleSchema = z.strictObject({
  statuses: z.array(z.number().int().min(400).max(599)).default([429, 503]).meta({
    description:
      'Statuses that mean "busy, come back later". 429 always cools the backend down; any other listed status only when it carries a retry hint.',
  }),
  defaultCooldown: duration.default(10_000),
  minCooldown: duration.default(0),
  maxCooldown: duration.default(300_000),
  hold: z
    .strictObject({
      maxWait: duration.default(2_000).meta({ description: 'Longest a request is held waiting for a cooling backend.' }),
      queue: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(1_000)
        .meta({ description: 'Requests held at most per upstream; more are answered at once.' }),
    })
    .optional()
    .meta({
      description:
        'Hold until ready (opt-in): when every backend is cooling and the soonest is back within maxWait, hold the request and send it then, instead of answering 429.',
    }),
});

export const failoverSchema = z.strictObject({
  maxAttempts: z
    .number()
    .int()
    .positive()
    .max(100)
    .optional()
    .meta({ description: 'Attempts per request, each on a different backend. Default: the number of backends.' }),
  replayBuffer: size.default(1024 * 1024).meta({
    description:
      'Request bodies up to this size are kept so they can be replayed to another backend; larger bodies are streamed once, without failover.',
  }),
});

export const timeoutsSchema = z.strictObject({
  connect: duration.default(2_000),
  headers: duration.default(60_000).meta({ description: 'Time to receive the response status line and headers.' }),
  idle: duration.default(60_000).meta({ description: 'Longest pause between two response body chunks.' }),
  websocketIdle: duration
    .default(300_000)
    .meta({ description: 'A proxied WebSocket with no frame either way for this long is closed (1001) on both sides.' }),
});

export const upstreamSchema = z.strictObject({
  balance: z.enum(['priority', 'round-robin', 'least-outstanding']).default('priority'),
  backends: z
    .array(backendSchema)
    .min(1, { message: 'an upstream needs at least one backend' })
    .max(32, { message: 'an upstream holds at most 32 backends' }),
  throttle: throttleSchema.prefault({}),
  failover: failoverSchema.prefault({}),
  timeouts: timeoutsSchema.prefault({}),
  hostHeader: z
    .string()
    .min(1)
    .default('backend')
    .meta({ description: '"backend" sends the backend\'s host, "preserve" keeps the client\'s Host, any other value is sent as is.' }),
  headers: setHeadersSchema.optional(),
  removeHeaders: removeHeadersSchema.optional(),
  tls: upstreamTlsSchema.optional(),
  ...upstreamResilienceFields,
});

export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
