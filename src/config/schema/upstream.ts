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
  model: z.string().min(1).max(200).optional().meta({
    description:
      "LLM backends: the JSON body's `model` is set to this for this backend (OpenAI-style), so one pool can serve one model under different names.",
  }),
  deployment: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, { message: 'a deployment name uses letters, digits, ".", "_" and "-"' })
    .optional()
    .meta({
      description:
        'Azure OpenAI backends: an OpenAI-style path ("/v1/chat/completions", or another deployment\'s path) is sent as /openai/deployments/<deployment>/chat/completions?api-version=<apiVersion>.',
    }),
  apiVersion: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional()
    .meta({ description: 'With `deployment`: the api-version query parameter added when the request has none (default 2024-10-21).' }),
  rpm: z.number().int().positive().max(100_000_000).optional().meta({
    description:
      'Declared capacity: requests per minute this backend accepts. The gateway counts what it sent in the current minute and steers away once it is spent (shared by replicas through `redis`, else per process; see docs/llm.md).',
  }),
  tpm: z.number().int().positive().max(10_000_000_000).optional().meta({
    description: 'Declared capacity: LLM tokens per minute (estimated as they are sent). Steered like rpm.',
  }),
});

const percent = z
  .union([z.number().min(0).max(100), z.string().regex(/^\d+(\.\d+)?%$/, { message: 'a share like "10%"' })])
  .transform((value) => (typeof value === 'number' ? value : Number(value.slice(0, -1))) / 100)
  .refine((share) => share >= 0 && share <= 1, { message: 'a share between 0% and 100%' });

export const predictiveSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      lowWater: percent.optional().meta({
        description:
          "Opt-in: while a backend's announced remaining requests or tokens are below this share of its limit, its weight is scaled down by remaining / (lowWater × limit) (never below 5%).",
      }),
    }),
  ])
  .default(true)
  .transform((value) => (value === false ? undefined : { lowWater: value === true ? undefined : value.lowWater }))
  .meta({
    description:
      'Steer before the 429: a backend that announced (x-ratelimit-remaining-requests|tokens, RateLimit r=) that its next request would be refused cools down until its announced reset, without a request spent on the 429. On by default; false turns it off.',
  });

export const throttleSchema = z.strictObject({
  statuses: z.array(z.number().int().min(400).max(599)).default([429, 503]).meta({
    description:
      'Statuses that mean "busy, come back later". 429 always cools the backend down; any other listed status only when it carries a retry hint.',
  }),
  defaultCooldown: duration.default(10_000),
  minCooldown: duration.default(0),
  maxCooldown: duration.default(300_000),
  predictive: predictiveSchema,
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
