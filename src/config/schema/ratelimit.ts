// Client rate limits: the named `rateLimits` policies that routes refer to with
// `rateLimit: <name>` or a list of names (the root `redis` store is in redis.ts).

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from './units.js';
import { secret } from './secret.js';
import type { RedisConfig } from './redis.js';

export { type RedisConfig, redisSchema } from './redis.js';

const RATE_UNITS: Record<string, number> = {
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
};

/** Bucket sizes, costs and refill amounts stay far below where float arithmetic loses whole tokens. */
export const MAX_TOKENS = 1_000_000_000;

/** "10/s", "600/m", "10000/h", "5/10s" → tokens per millisecond (undefined when malformed). */
export function parseRate(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$/i.exec(text);
  if (!match) return undefined;
  const tokens = Number(match[1]);
  const unit = RATE_UNITS[match[3]!.toLowerCase()] ?? (match[3] === 'ms' ? 1 : undefined);
  if (unit === undefined) return undefined;
  const per = (match[2] === undefined ? 1 : Number(match[2])) * unit;
  if (!(tokens > 0 && tokens <= MAX_TOKENS) || !(per > 0 && Number.isFinite(per))) return undefined;
  return tokens / per;
}

/** A refill rate: tokens per time unit; parsed to tokens per millisecond. */
export const rate = z
  .string()
  .transform((value, ctx) => {
    const perMs = parseRate(value);
    if (perMs === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a rate like "10/s", "600/m", "10000/h" or "5/10s" (at most 1e9 tokens), got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return perMs;
  })
  .meta({ description: 'Refill rate: tokens per unit (s, m, h, d), e.g. "10/s", "600/m", "10000/h", "5/10s".' });

const KEY_PART = /^(header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|jwt:[A-Za-z0-9_.:-]+|ip|route|auth)$/;

export const keyPart = z
  .string()
  .trim()
  .refine((value) => KEY_PART.test(value), { message: 'a key is "header:<name>", "ip", "jwt:<claim>", "route" or "auth"' });

export const cidr = z
  .string()
  .trim()
  .refine(
    (value) => {
      const [address, bits] = value.split('/');
      const family = isIP(address ?? '');
      if (family === 0) return false;
      if (bits === undefined) return true;
      const n = Number(bits);
      return /^\d+$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
    },
    { message: 'expected an IP address or CIDR, like "10.0.0.0/8" or "::1"' },
  );

/** The members of a JWK that hold private or symmetric key material (RFC 7518 §6). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** A key of a JWKS file as parsed: its private members are secrets (a verifier needs none). */
const jwkSchema = z.looseObject(Object.fromEntries(PRIVATE_JWK_MEMBERS.map((member) => [member, secret(z.unknown()).optional()])));

/** What a JWKS source becomes: a URL to fetch, or the keys read from a file. */
const jwksLoaded = z.union([z.strictObject({ url: z.string() }), z.strictObject({ file: z.string(), keys: z.array(jwkSchema) })]);

/** A JWKS document read from a file when the config is loaded (a URL is fetched at run time). */
const jwksSource = z
  .string()
  .min(1)
  .transform((value, ctx) => {
    if (/^https?:\/\//i.test(value)) {
      try {
        return { url: new URL(value).href };
      } catch {
        ctx.addIssue({ code: 'custom', message: `invalid JWKS URL ${JSON.stringify(value)}` });
        return z.NEVER;
      }
    }
    try {
      const parsed = JSON.parse(readFileSync(value, 'utf8')) as { keys?: unknown };
      if (!parsed || !Array.isArray(parsed.keys)) throw new Error('no "keys" array');
      return { file: value, keys: parsed.keys as Array<Record<string, unknown>> };
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `cannot read JWKS file ${JSON.stringify(value)}: ${(error as Error).message}` });
      return z.NEVER;
    }
  })
  .pipe(jwksLoaded)
  .meta({
    description:
      'A JWKS: an https:// URL (fetched and cached) or a file path (read when the config loads; relative to the working directory).',
  });

/** The fields of a JWT verification (rate-limit `jwt` and route `auth.jwt`). */
export const jwtFields = {
  secret: secret(z.string().min(1)).optional().meta({ description: 'HS256 shared secret (use ${ENV}).' }),
  jwks: jwksSource.optional(),
  issuer: z.string().min(1).optional().meta({ description: 'Required `iss` claim.' }),
  audience: z.string().min(1).optional().meta({ description: 'Required `aud` claim.' }),
  header: z.string().toLowerCase().default('authorization').meta({ description: 'Header carrying "Bearer <token>".' }),
  clockTolerance: duration.default(0).meta({ description: 'Leeway for exp/nbf.' }),
  requireExp: z.boolean().default(false).meta({ description: 'Refuse tokens without an `exp` claim (tokens that never expire).' }),
};

/** Exactly one key source. */
export const oneJwtKeySource = (jwt: { secret?: string | undefined; jwks?: unknown }): boolean =>
  (jwt.secret === undefined) !== (jwt.jwks === undefined);

export const jwtSchema = z
  .strictObject(jwtFields)
  .refine(oneJwtKeySource, { message: 'set exactly one of jwt.secret (HS256) and jwt.jwks' });

export const tierSchema = z.strictObject({
  keys: secret(z.array(z.string().min(1)).min(1)).meta({ description: 'Client key values (e.g. API keys) in this tier.' }),
  capacity: z
    .number()
    .positive()
    .max(MAX_TOKENS)
    .optional()
    .meta({ description: "Bucket size for these clients (default: the policy's)." }),
  refill: rate.optional(),
  cost: z.number().positive().max(MAX_TOKENS).optional(),
});

/** A long-period allowance (calendar periods in UTC), answered 403 when spent. */
export const quotaSchema = z
  .strictObject({
    limit: z.number().int().positive().max(1e12).meta({ description: 'Units (requests or tokens, as the policy counts) per period.' }),
    period: z.enum(['day', 'week', 'month']).meta({ description: 'Calendar period in UTC (weeks start on Monday).' }),
  })
  .meta({ description: 'A quota per client and calendar period (UTC); a client that spent it gets 403 until the next period.' });

export const rateLimitPolicySchema = z
  .strictObject({
    key: z
      .union([keyPart, z.array(keyPart).min(1)])
      .default('auth')
      .transform((value) => (Array.isArray(value) ? value : [value]))
      .meta({
        description:
          "Client identity: auth (the identity the route's `auth` established; the default), header:<name>, ip, jwt:<claim>, route — or a list that combines them.",
      }),
    capacity: z.number().positive().max(MAX_TOKENS).meta({ description: 'Bucket size: the burst a client may send at once.' }),
    refill: rate,
    cost: z.number().positive().max(MAX_TOKENS).default(1).meta({ description: 'Tokens one request takes (unit: requests).' }),
    unit: z.enum(['requests', 'tokens']).default('requests').meta({
      description:
        "What the bucket counts: requests (each takes `cost`), or LLM tokens — an estimate of the prompt plus max_tokens is reserved before forwarding and settled from the answer's `usage`.",
    }),
    quota: quotaSchema.optional(),
    maxInFlight: z.number().int().positive().max(100_000).optional().meta({
      description:
        "Most requests of one client in flight at once (long streaming answers); one more gets 429 at once. A slot not given back (crash) returns after the route's request deadline.",
    }),
    missingKey: z
      .enum(['deny', 'ip'])
      .default('deny')
      .meta({ description: 'A request without the key: deny (401) or use the client IP instead.' }),
    trustedProxies: z.array(cidr).optional().meta({
      description: 'Overrides listen.trustedProxies for this policy: peers whose X-Forwarded-For is believed when the key is ip.',
    }),
    jwt: jwtSchema.optional(),
    tiers: z.record(z.string().min(1), tierSchema).default({}),
    mode: z
      .enum(['reject', 'queue'])
      .default('reject')
      .meta({ description: 'queue: hold a request until a token is due if that is within maxWait; reject: 429 at once.' }),
    maxWait: duration.default(0).meta({ description: 'Longest hold in queue mode.' }),
    store: z.enum(['redis', 'memory']).optional().meta({ description: 'Default: redis when `redis` is configured, else memory.' }),
    onRedisError: z.enum(['open', 'closed', 'local']).optional().meta({ description: 'Overrides redis.onRedisError for this policy.' }),
  })
  .superRefine((policy, ctx) => {
    // Runs even when a field failed (zod keeps going): only look at what parsed.
    const usesJwt = Array.isArray(policy.key) && policy.key.some((part) => part.startsWith('jwt:'));
    if (usesJwt && !policy.jwt) ctx.addIssue({ code: 'custom', path: ['jwt'], message: 'a jwt:<claim> key needs jwt.secret or jwt.jwks' });
    if (policy.mode === 'queue' && policy.maxWait <= 0)
      ctx.addIssue({ code: 'custom', path: ['maxWait'], message: 'mode: queue needs a maxWait, like "2s"' });
    if (policy.cost > policy.capacity)
      ctx.addIssue({
        code: 'custom',
        path: ['cost'],
        message: `cost ${policy.cost} is larger than capacity ${policy.capacity}: no request could ever pass`,
      });
    const seen = new Map<string, string>();
    for (const [name, tier] of Object.entries(policy.tiers ?? {})) {
      if (!Array.isArray(tier.keys)) continue;
      if ((tier.cost ?? policy.cost) > (tier.capacity ?? policy.capacity))
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', name],
          message: "the tier's cost is larger than its capacity: no request could ever pass",
        });
      for (const key of tier.keys) {
        const other = seen.get(key);
        if (other)
          // The key itself is a secret: the file:line of the error points at it.
          ctx.addIssue({ code: 'custom', path: ['tiers', name, 'keys'], message: `a key of this tier is also in tier "${other}"` });
        seen.set(key, name);
      }
    }
  });

/** `rateLimit` on a route: one policy name or a list of them. */
export const routeRateLimit = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .transform((value) => (Array.isArray(value) ? value : [value]))
  .meta({ description: 'Rate-limit policy name(s) from `rateLimits`; every one must allow the request.' });

export const rateLimitsSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'policy names use letters, digits, "_", "." and "-"' }),
  rateLimitPolicySchema,
);

export type RateLimitPolicyConfig = z.output<typeof rateLimitPolicySchema>;
export type JwtConfig = z.output<typeof jwtSchema>;

/** Cross-checks between routes and policies (called from the root schema's superRefine). */
export function checkRateLimitRefs(
  config: {
    routes: Array<{ rateLimit?: string[] | undefined }>;
    rateLimits: Record<string, RateLimitPolicyConfig>;
    redis?: RedisConfig | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const policies = config.rateLimits ?? {};
  (Array.isArray(config.routes) ? config.routes : []).forEach((route, index) => {
    if (!Array.isArray(route.rateLimit)) return;
    route.rateLimit.forEach((name, at) => {
      if (!(name in policies)) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'rateLimit', ...(route.rateLimit!.length > 1 ? [at] : [])],
          message: `unknown rate limit policy "${name}" (defined: ${Object.keys(policies).join(', ') || 'none'})`,
        });
      }
    });
  });
  for (const [name, policy] of Object.entries(policies)) {
    if (policy.store === 'redis' && !config.redis)
      ctx.addIssue({ code: 'custom', path: ['rateLimits', name, 'store'], message: 'store: redis needs a root `redis` section' });
  }
}
