// Per-route Idempotency-Key handling (draft-ietf-httpapi-idempotency-key-header).

import { z } from 'zod';

export const idempotencySchema = z
  .strictObject({
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: 'expected an HTTP header name' })
      .default('Idempotency-Key')
      .meta({ description: 'The request header carrying the idempotency key.' }),
    retryOnReset: z.boolean().default(false).meta({
      description:
        "The route's backends deduplicate by the key themselves: a non-idempotent request (POST, PATCH) carrying the key may be sent again to another backend after its connection broke. Default false: such a request is never replayed.",
    }),
  })
  .meta({ description: 'Idempotency-Key handling for this route.' });

export type IdempotencyConfig = z.output<typeof idempotencySchema>;
