// Per-route Idempotency-Key handling (draft-ietf-httpapi-idempotency-key-header).

import { z } from 'zod';
import { HTTP_METHODS } from './match.js';
import { jwtSchema, keyPart } from './ratelimit.js';
import { duration, size } from './units.js';

export const idempotencySchema = z
  .strictObject({
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: 'expected an HTTP header name' })
      .default('Idempotency-Key')
      .meta({ description: 'The request header carrying the idempotency key.' }),
    ttl: duration.default(86_400_000).meta({ description: "How long a completed request's answer is kept and replayed." }),
    methods: z
      .array(z.string().toUpperCase().pipe(z.enum(HTTP_METHODS)))
      .min(1)
      .default(['POST', 'PATCH'])
      .meta({ description: 'Methods whose keyed requests are deduplicated.' }),
    scopeBy: z
      .union([keyPart, z.array(keyPart).min(1)])
      .transform((value) => (Array.isArray(value) ? value : [value]))
      .optional()
      .meta({
        description:
          'Who a key belongs to, besides method and path (the rate-limit key grammar: "header:<name>", "ip", "jwt:<claim>", "route"). A request without the scope value is refused (400).',
      }),
    jwt: jwtSchema.optional().meta({ description: 'How to verify the token a jwt:<claim> scope reads.' }),
    maxBody: size
      .default(1024 * 1024)
      .meta({ description: 'Answers with a larger body are passed through, not stored, and the key released.' }),
    store: z
      .enum(['auto', 'memory', 'redis'])
      .default('auto')
      .meta({ description: 'auto: Redis when the gateway has `redis:`, else memory. memory: this process only.' }),
    memoryLimit: size
      .default(64 * 1024 * 1024)
      .meta({ description: 'Bytes the in-memory store of this route may hold; least recently used keys go first.' }),
    onStoreError: z.enum(['closed', 'open']).default('closed').meta({
      description:
        'Store unavailable: closed (keyed requests get 503 with Retry-After; nothing is applied twice) or open (forwarded without protection).',
    }),
    retryOnReset: z.boolean().default(false).meta({
      description:
        "The route's backends deduplicate by the key themselves: a non-idempotent request (POST, PATCH) carrying the key may be sent again to another backend after its connection broke. Default false: such a request is never replayed.",
    }),
  })
  .superRefine((config, ctx) => {
    const usesJwt = config.scopeBy?.some((part) => part.startsWith('jwt:')) ?? false;
    if (usesJwt && config.jwt === undefined)
      ctx.addIssue({ code: 'custom', path: ['jwt'], message: 'a jwt:<claim> scope needs idempotency.jwt (secret or jwks)' });
  })
  .meta({ description: 'Idempotency-Key handling for this route: duplicates of a keyed request get the first answer.' });

export type IdempotencyConfig = z.output<typeof idempotencySchema>;
