import { z } from 'zod';
import { port, size } from './units.js';
import { upstreamSchema } from './upstream.js';
import { routeSchema } from './route.js';
import { reloadSchema } from './reload.js';
import { routeUpstreamRefs } from './route-refs.js';
import { listenerTlsSchema } from './tls.js';
import { http2LimitsSchema, listenTimeoutsSchema } from './listen.js';
import { checkAggregate } from './aggregate.js';
import { shutdownSchema } from './resilience.js';
import { checkRateLimitRefs, cidr, rateLimitsSchema } from './ratelimit.js';
import { redisSchema } from './redis.js';
import { pathsSchema } from './paths.js';
import { logSchema, metricsSchema } from './telemetry.js';
import { secret } from './secret.js';

const listenSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: port.default(8080),
  tls: listenerTlsSchema
    .optional()
    .meta({ description: 'Serve HTTPS with this certificate. Default: plain HTTP (TLS ends at an ingress).' }),
  http2: z.boolean().default(false).meta({ description: 'Also speak HTTP/2 to clients (ALPN; HTTP/1.1 still served). Needs tls.' }),
  trustedProxies: z.array(cidr).default([]).meta({
    description:
      'Peers (addresses / CIDRs) whose X-Forwarded-For, X-Real-IP and Forwarded are believed; from any other peer they are replaced or dropped. Also decides `ip` rate-limit keys and `stickyBy: ip`.',
  }),
  timeouts: listenTimeoutsSchema
    .prefault({})
    .meta({ description: 'How long a client may take (client side; upstream timeouts are about backends).' }),
  http2Limits: http2LimitsSchema.prefault({}).meta({ description: 'What one HTTP/2 client connection may ask for.' }),
});

/** Long enough that guessing is hopeless; `openssl rand -hex 32` gives 64 characters. */
const adminToken = z
  .string()
  .min(16, { message: 'the admin token (admin.token or SPILLWAY_ADMIN_TOKEN) needs at least 16 characters, e.g. `openssl rand -hex 32`' })
  .max(1024)
  .regex(/^[\x21-\x7e]+$/, { message: 'the admin token must be printable ASCII without spaces (it travels in an HTTP header)' });

const adminSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1').meta({
    description:
      'Address of the admin listener. Anything but a loopback address needs admin.token, else every /admin/* request is answered 401.',
  }),
  port: port.default(9901),
  token: secret(adminToken).optional().meta({
    description:
      'Bearer token for /admin/* and POST /admin/reload (browsers sign in once at /admin/login). Default: $SPILLWAY_ADMIN_TOKEN; none = admin open on loopback only. A reload picks up a new value.',
  }),
  metricsToken: z.boolean().default(false).meta({
    description:
      'Put GET /metrics behind admin.token too (Prometheus: `authorization: { credentials: ... }`). /healthz and /readyz never need it.',
  }),
});

const limitsSchema = z.strictObject({
  maxRequestBody: size.default(10 * 1024 * 1024).meta({ description: 'Larger request bodies are answered 413.' }),
  maxHeaderSize: size.default(16 * 1024).meta({ description: 'Larger request headers are answered 431.' }),
  maxMemoryBuckets: z.number().int().min(1).max(100_000_000).default(1_000_000).meta({
    description:
      'Most in-memory rate-limit buckets kept (per store: memory policies, and the Redis fallback). Past it the fullest buckets are evicted first. About 100 bytes each.',
  }),
});

export const gatewaySchema = z
  .strictObject({
    listen: listenSchema.prefault({}),
    admin: adminSchema.prefault({}),
    limits: limitsSchema.prefault({}),
    paths: pathsSchema.prefault({}),
    log: logSchema.prefault({}),
    reload: reloadSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
    upstreams: z.record(
      z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'upstream names use letters, digits, "_", "." and "-"' }),
      upstreamSchema,
    ),
    routes: z.array(routeSchema).min(1, { message: 'at least one route is needed' }),
    shutdown: shutdownSchema.prefault({}),
    workers: z
      .union([z.literal('auto'), z.number().int().min(1).max(256)])
      .default(1)
      .meta({
        description:
          'Worker processes sharing the listening ports (node:cluster): "auto" = one per available CPU. They act as one gateway: backend state and in-memory client buckets are shared through the primary process. Read at start only.',
      }),
    redis: redisSchema.optional(),
    rateLimits: rateLimitsSchema.default({}),
  })
  .superRefine((config, ctx) => {
    checkRateLimitRefs(config, ctx);
    if (config.listen.http2 && !config.listen.tls) {
      ctx.addIssue({ code: 'custom', path: ['listen', 'http2'], message: 'http2 needs listen.tls (clients negotiate HTTP/2 over TLS)' });
    }
    const names = new Map<string, number>();
    config.routes.forEach((route, index) => {
      const name = route.name ?? `route-${index}`;
      if (names.has(name))
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'name'],
          message: `route name "${name}" is already used by routes[${names.get(name)}]`,
        });
      names.set(name, index);
      if (route.auth?.apiKeys?.redisSet !== undefined && !config.redis)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'auth', 'apiKeys', 'redisSet'],
          message: 'apiKeys.redisSet needs the top-level `redis` connection (redis: { url: ... })',
        });
      if (route.aggregate) {
        checkAggregate(route.aggregate, Object.keys(config.upstreams), ['routes', index, 'aggregate'], (path, message) =>
          ctx.addIssue({ code: 'custom', path, message }),
        );
      }
      for (const ref of routeUpstreamRefs(route)) {
        if (!(ref.name in config.upstreams)) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', index, ...ref.path],
            message: `unknown upstream "${ref.name}" (defined: ${Object.keys(config.upstreams).join(', ') || 'none'})`,
          });
        }
      }
      if (route.cache?.store === 'redis' && !config.redis)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'cache', 'store'],
          message: 'cache store: redis needs a root `redis` section',
        });
      if (route.idempotency?.store === 'redis' && config.redis === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'idempotency', 'store'],
          message: 'store: redis needs a top-level redis: block',
        });
      const fallback = route.fallback?.upstream;
      if (fallback !== undefined && !(fallback in config.upstreams)) {
        ctx.addIssue({ code: 'custom', path: ['routes', index, 'fallback', 'upstream'], message: `unknown upstream "${fallback}"` });
      }
    });
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const { minCooldown, maxCooldown, defaultCooldown } = upstream.throttle;
      if (minCooldown > maxCooldown) {
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', name, 'throttle', 'minCooldown'],
          message: 'minCooldown is larger than maxCooldown',
        });
      } else if (defaultCooldown < minCooldown || defaultCooldown > maxCooldown) {
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', name, 'throttle', 'defaultCooldown'],
          message: 'defaultCooldown must lie between minCooldown and maxCooldown',
        });
      }
      const seen = new Set<string>();
      upstream.backends.forEach((backend, index) => {
        const id = backend.name ?? backend.url;
        if (seen.has(id)) {
          const message = backend.name
            ? `backend name "${backend.name}" is used twice`
            : `backend ${backend.url} is listed twice (give each entry a distinct name to list one URL twice)`;
          ctx.addIssue({ code: 'custom', path: ['upstreams', name, 'backends', index, backend.name ? 'name' : 'url'], message });
        }
        seen.add(id);
        if (backend.tls && !backend.url.startsWith('https:')) {
          ctx.addIssue({
            code: 'custom',
            path: ['upstreams', name, 'backends', index, 'tls'],
            message: 'tls applies to https:// backends only',
          });
        }
      });
    }
  });

export type GatewayConfig = z.output<typeof gatewaySchema>;
export type GatewayConfigInput = z.input<typeof gatewaySchema>;

/** The JSON Schema of the YAML file, for editors (config/schema.json). */
export function gatewayJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(gatewaySchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
