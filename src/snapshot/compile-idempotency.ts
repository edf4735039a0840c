// Compiles a route's `idempotency:` block: its store, and how to read the scope a key belongs to
// (the rate-limit key grammar: header, ip, verified jwt claim, route).

import type { IncomingMessage } from 'node:http';
import type { IdempotencyConfig } from '../config/schema/idempotency.js';
import type { IdempotencyStore } from '../idempotency/store.js';
import { clientIpResolver } from '../core/client-ip.js';
import { claimValue, jwtVerifier } from '../ratelimit/jwt.js';
import type { RouteIdempotency } from './snapshot.js';

type Scope = (req: IncomingMessage, route: string) => string | undefined | Promise<string | undefined>;

export function compileIdempotency(
  config: IdempotencyConfig,
  store: IdempotencyStore,
  trustedProxies: readonly string[],
): RouteIdempotency {
  return {
    header: config.header.toLowerCase(),
    retryOnReset: config.retryOnReset,
    methods: new Set(config.methods),
    ttl: config.ttl,
    maxBody: config.maxBody,
    onStoreError: config.onStoreError,
    store,
    scope: config.scopeBy ? compileScope(config.scopeBy, config, trustedProxies) : undefined,
  };
}

function compileScope(parts: readonly string[], config: IdempotencyConfig, trustedProxies: readonly string[]): Scope {
  // `ip` is the client address, believing X-Forwarded-For only from listen.trustedProxies.
  const ip = parts.includes('ip') ? clientIpResolver(trustedProxies) : undefined;
  const verify = config.jwt && parts.some((part) => part.startsWith('jwt:')) ? jwtVerifier(config.jwt) : undefined;
  const read = (req: IncomingMessage, route: string, claims: Record<string, unknown> | undefined): string | undefined => {
    const values: string[] = [];
    for (const part of parts) {
      let value: string | undefined;
      if (part === 'route') value = route;
      else if (part === 'ip') value = ip!(req) || undefined;
      else if (part.startsWith('header:')) {
        const raw = req.headers[part.slice(7).toLowerCase()];
        value = (Array.isArray(raw) ? raw[0] : raw)?.trim() || undefined;
      } else value = claims ? claimValue(claims, part.slice(4)) : undefined;
      if (value === undefined) return undefined;
      values.push(value);
    }
    return values.join('\u0001');
  };
  return verify
    ? async (req, route) => read(req, route, (await verify(req)) as Record<string, unknown> | undefined)
    : (req, route) => read(req, route, undefined);
}
