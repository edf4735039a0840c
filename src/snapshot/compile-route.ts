// Compiles one route rule: its match, its action, rewrites and mirror.

import type { RouteConfig } from '../config/schema/route.js';
import { compileAggregate } from '../routing/aggregate/compile.js';
import { compileMatch } from '../routing/matchers.js';
import { compileRespond } from '../routing/respond.js';
import { compileHeaderOps, compilePathRewrite } from '../routing/rewrite.js';
import type { RouteStatsRegistry } from '../state/route-stats.js';
import { compileSplit } from '../routing/split.js';
import type { FallbackConfig } from '../config/schema/resilience.js';
import type { IdempotencyConfig } from '../config/schema/idempotency.js';
import { MemoryIdempotencyStore } from '../idempotency/memory-store.js';
import type { IdempotencyStore } from '../idempotency/store.js';
import { compileIdempotency } from './compile-idempotency.js';
import type { CompiledRoute, CompiledUpstream, RouteAction, RouteFallback } from './snapshot.js';
import { compileRouteAuth } from '../auth/route-auth.js';
import type { LiveKeysOf } from '../state/api-key-sets.js';

/** Where a route's idempotency records live, and whose X-Forwarded-For an `ip` scope believes. */
export interface IdempotencyOptions {
  store?: ((route: string, config: IdempotencyConfig) => IdempotencyStore) | undefined;
  trustedProxies?: readonly string[];
}

/** The name a rule is known by (admin, logs, counters). */
export function routeName(route: RouteConfig, index: number): string {
  return route.name ?? `route-${index}`;
}

export function compileRoute(
  route: RouteConfig,
  index: number,
  upstreams: ReadonlyMap<string, CompiledUpstream>,
  stats: RouteStatsRegistry,
  caseInsensitive = false,
  liveKeys?: LiveKeysOf,
  idempotencyOptions: IdempotencyOptions = {},
): CompiledRoute {
  const name = routeName(route, index);
  const match = compileMatch(route.match, caseInsensitive);
  const upstreamOf = (upstream: string) => upstreams.get(upstream)!;
  let action: RouteAction;
  if (route.split) {
    action = {
      kind: 'split',
      split: compileSplit(
        route.split.map((entry) => ({ target: upstreamOf(entry.upstream), name: entry.upstream, weight: entry.weight })),
        route.stickyBy,
      ),
    };
  } else if (route.respond) {
    action = { kind: 'respond', respond: compileRespond(route.respond) };
  } else if (route.aggregate) {
    action = { kind: 'aggregate', aggregate: compileAggregate(route.aggregate, upstreams, match.path.paramNames) };
  } else {
    action = { kind: 'upstream', upstream: upstreamOf(route.upstream!) };
  }
  return {
    index,
    name,
    match,
    action,
    upstream: action.kind === 'upstream' ? action.upstream : undefined,
    rewrite: compilePathRewrite(route.rewrite, match.path, caseInsensitive),
    requestHeaders: compileHeaderOps(route.rewrite?.requestHeaders),
    responseHeaders: compileHeaderOps(route.rewrite?.responseHeaders),
    mirror: route.mirror
      ? {
          upstream: upstreamOf(route.mirror.upstream),
          fraction: route.mirror.percent,
          compare: route.mirror.compare,
          maxConcurrent: route.mirror.maxConcurrent,
          maxBody: route.mirror.maxBody,
          timeout: route.mirror.timeout,
        }
      : undefined,
    stats: stats.get(name),
    removeHeaders:
      route.removeHeaders && route.removeHeaders.length > 0 ? route.removeHeaders.map((header) => header.toLowerCase()) : undefined,
    fallback: compileFallback(route.fallback, upstreams),
    idempotency:
      route.idempotency &&
      compileIdempotency(
        route.idempotency,
        idempotencyOptions.store?.(name, route.idempotency) ?? new MemoryIdempotencyStore(route.idempotency.memoryLimit),
        idempotencyOptions.trustedProxies ?? [],
      ),
    auth: route.auth ? compileRouteAuth(route.auth, route.auth.apiKeys && liveKeys?.(route.auth.apiKeys)) : undefined,
  };
}

export function compileFallback(
  config: FallbackConfig | undefined,
  upstreams: ReadonlyMap<string, CompiledUpstream>,
): RouteFallback | undefined {
  if (!config) return undefined;
  if (config.upstream !== undefined) return { kind: 'upstream', upstream: upstreams.get(config.upstream)! };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.headers ?? {})) headers[name.toLowerCase()] = value;
  return { kind: 'static', status: config.status ?? 503, headers, body: config.body ?? '' };
}
