// What a route does once it matched: exactly one action (upstream, split, respond), plus
// optional rewrites and a mirror.

import { z } from 'zod';
import { removeHeadersSchema, setHeadersSchema } from './headers.js';
import { pathPattern } from './match.js';
import { duration, percent, size } from './units.js';

const plainPath = z.string().startsWith('/', { message: 'a path starts with "/"' });
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'not a valid header name' });

export const headerOpsSchema = z.strictObject({
  set: setHeadersSchema.optional().meta({ description: 'Header → value, replacing any value sent (values may use ${ENV}; never shown).' }),
  remove: removeHeadersSchema.optional().meta({ description: 'Headers to drop.' }),
});

export const rewriteSchema = z.strictObject({
  stripPrefix: plainPath.optional().meta({ description: 'Removed from the start of the path before forwarding.' }),
  addPrefix: plainPath
    .optional()
    .meta({ description: 'Added to the start of the path (after stripPrefix): both together replace a prefix.' }),
  replacePrefix: z
    .strictObject({ from: plainPath, to: plainPath })
    .optional()
    .meta({ description: 'Replaces the matched prefix `from` with `to` (same as stripPrefix + addPrefix).' }),
  path: pathPattern.optional().meta({
    description: 'The forwarded path, built from the route\'s :params (e.g. "/v2/users/:id"); the rest of a prefix match is appended.',
  }),
  requestHeaders: headerOpsSchema.optional(),
  responseHeaders: headerOpsSchema.optional(),
});

export const splitSchema = z
  .array(
    z.strictObject({
      upstream: z.string().min(1),
      weight: z.number().min(0).max(1_000_000).meta({ description: 'Relative share of the traffic (e.g. 10 and 90).' }),
    }),
  )
  .min(1)
  .refine((entries) => entries.some((e) => e.weight > 0), { message: 'at least one split weight must be above 0' })
  .refine((entries) => new Set(entries.map((e) => e.upstream)).size === entries.length, {
    message: 'an upstream appears twice in the split',
  });

export const stickyBySchema = z
  .string()
  .regex(/^(header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\s;=]+|ip)$/, { message: 'use "header:<name>", "cookie:<name>" or "ip"' })
  .meta({ description: 'Keeps a client on one side of the split: "header:x-user-id", "cookie:session" or "ip".' });

export const respondSchema = z
  .strictObject({
    status: z.number().int().min(200).max(599).optional().meta({ description: 'Default 200, or 302 with redirect.' }),
    body: z
      .union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
      .optional()
      .meta({ description: 'A string is sent as text/plain, an object or list as JSON.' }),
    headers: z.record(headerName, z.string()).optional(),
    redirect: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Location to redirect to; ":name" params are filled in. The query is kept.' }),
  })
  .refine((r) => r.redirect === undefined || r.status === undefined || (r.status >= 300 && r.status < 400), {
    message: 'a redirect needs a 3xx status',
    path: ['status'],
  });

export const mirrorSchema = z.strictObject({
  upstream: z.string().min(1),
  percent: percent.default(1).meta({ description: 'Share of the route\'s requests copied to the shadow, "5%" or 5. Default 100%.' }),
  compare: z
    .enum(['none', 'status', 'body'])
    .default('status')
    .meta({ description: '"status": status codes equal; "body": status and JSON bodies equal; "none": just send.' }),
  maxConcurrent: z
    .number()
    .int()
    .positive()
    .max(100_000)
    .default(16)
    .meta({ description: 'Shadow requests in flight at most; more are skipped.' }),
  timeout: duration
    .default(10_000)
    .meta({ description: 'A shadow request still unanswered after this is abandoned (counted as a shadow error), freeing its slot.' }),
  maxBody: size
    .default(1024 * 1024)
    .meta({ description: 'With compare: body, responses up to this size are compared; larger ones count as not compared.' }),
});

/** The action keys; a route has exactly one. (Add new actions to this list.) */
export const ROUTE_ACTIONS = ['upstream', 'split', 'respond', 'aggregate'] as const;
