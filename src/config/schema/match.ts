// Route match conditions: path (prefix, exact, templates with :params), host, methods, headers,
// query parameters and cookies. Every condition given must hold.

import safeRegex from 'safe-regex2';
import { z } from 'zod';
import { secret } from './secret.js';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'] as const;

const BODY_PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

const PARAM_SEGMENT = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/** A path pattern: literal segments and `:name` segments (a template). */
export const pathPattern = z
  .string()
  .startsWith('/', { message: 'a path starts with "/"' })
  .superRefine((value, ctx) => {
    const names = new Set<string>();
    for (const segment of value.split('/').slice(1)) {
      if (segment.startsWith(':')) {
        if (!PARAM_SEGMENT.test(segment)) {
          ctx.addIssue({ code: 'custom', message: `"${segment}" is not a valid parameter: use ":name" with letters, digits and "_"` });
        } else if (names.has(segment)) {
          ctx.addIssue({ code: 'custom', message: `parameter ${segment} appears twice` });
        }
        names.add(segment);
      }
    }
    if (/%2f|%2e|\/\.\.?(\/|$)|\/\//i.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'write the path normalised: no "//", "." or ".." segments, no %2F or %2E' });
    }
  });

/**
 * A pattern must compile and must not nest quantifiers (star height above 1, as safe-regex2 and
 * fastify judge it): `^(a+)+$` against "aaaa…!" backtracks exponentially and would stall the event
 * loop on one request. Rewriting without the nesting is always possible (`^a+$`, `^[a-z][a-z-]*$`).
 */
function checkRegex(source: string, ctx: z.RefinementCtx): void {
  try {
    new RegExp(source);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${JSON.stringify(source)}` });
    return;
  }
  if (!safeRegex(source)) {
    ctx.addIssue({
      code: 'custom',
      message: `regex ${JSON.stringify(source)} nests quantifiers (like (a+)+) and can backtrack for seconds on a crafted value: rewrite it without a repeated group that itself repeats`,
    });
  }
}

/** A value condition on a header, query parameter or cookie. A bare string means `equals`. */
export const valueMatchSchema = z.union([
  z.string(),
  z
    .strictObject({
      equals: z.string().optional(),
      regex: z.string().superRefine(checkRegex).optional().meta({
        description:
          'JavaScript regular expression, unanchored unless written with ^ and $. Patterns with nested quantifiers, like (a+)+, are refused: they can backtrack for seconds on a crafted value.',
      }),
      present: z.boolean().optional().meta({ description: 'true: must be present (any value); false: must be absent.' }),
      absent: z.literal(true).optional().meta({ description: 'Must be absent (same as present: false).' }),
    })
    .refine((m) => [m.equals, m.regex, m.present, m.absent].filter((v) => v !== undefined).length === 1, {
      message: 'give exactly one of equals, regex, present, absent',
    }),
]);

const valueMatches = z.record(z.string().min(1), valueMatchSchema);
/** Header and cookie conditions often hold credentials (an internal key, a session): never shown. */
const secretValueMatches = z.record(z.string().min(1), secret(valueMatchSchema));

export const matchSchema = z
  .strictObject({
    path: pathPattern.optional().meta({
      description:
        'Prefix matched on whole segments: "/api/orders" matches /api/orders and /api/orders/7, not /api/ordersX. May contain ":name" segments (a template). Default "/" (everything).',
    }),
    exact: pathPattern.optional().meta({ description: 'The whole path must equal this (":name" segments allowed). Instead of path.' }),
    host: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .meta({ description: 'Host header (port ignored, case-insensitive); "*.example.com" matches any subdomain.' }),
    methods: z
      .array(z.string().toUpperCase().pipe(z.enum(HTTP_METHODS)))
      .min(1)
      .optional(),
    headers: secretValueMatches.optional().meta({ description: 'Header name → condition (names are case-insensitive).' }),
    query: valueMatches.optional().meta({ description: 'Query parameter → condition (the first value counts).' }),
    cookies: secretValueMatches.optional().meta({ description: 'Cookie name → condition.' }),
    body: z
      .record(z.string(), valueMatchSchema)
      .superRefine((fields, ctx) => {
        for (const name of Object.keys(fields))
          if (!BODY_PATH.test(name))
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: `${JSON.stringify(name)}: a body field is a dotted path of names or indexes, like "model" or "metadata.tier"`,
            });
      })
      .optional()
      .meta({
        description:
          'JSON body field (dotted path: "model", "metadata.tier", "messages.0.role") → condition on its value (strings as they are; numbers and booleans as JSON text). The body is read (at most the replay buffer) only when a rule with body conditions is reached; a body that is not a JSON object, or is larger than the replay buffer, matches no body condition: the request goes on to the next rule.',
      }),
  })
  .refine((m) => !(m.path !== undefined && m.exact !== undefined), { message: 'give path (prefix) or exact, not both' });

export type MatchConfig = z.output<typeof matchSchema>;
export type ValueMatchConfig = z.output<typeof valueMatchSchema>;
