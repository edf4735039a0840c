// GET /admin/routes: the migration view — rules in the order they are evaluated, what each does,
// how many requests it took, where they went, and how well the shadow agrees with the primary.

import { redactConfig } from '../config/redact.js';
import type { GatewayConfig } from '../config/schema/index.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';

function ratio(part: number, whole: number): number | null {
  return whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;
}

export function mirrorView(route: CompiledRoute) {
  if (!route.mirror) return undefined;
  const m = route.stats.mirror;
  return {
    upstream: route.mirror.upstream.name,
    percent: route.mirror.fraction * 100,
    compare: route.mirror.compare,
    maxConcurrent: route.mirror.maxConcurrent,
    sent: m.sent,
    skipped: m.skipped,
    inFlight: m.inFlight,
    compared: m.compared,
    statusEqual: m.statusEqual,
    bodyCompared: m.bodyCompared,
    bodyEqual: m.bodyEqual,
    shadowErrors: m.shadowErrors,
    /** Share of compared pairs that agreed (status, and body when compared). */
    agreementRate: ratio(
      route.mirror.compare === 'body' ? m.bodyEqual : m.statusEqual,
      route.mirror.compare === 'body' ? m.bodyCompared : m.compared,
    ),
    statusAgreementRate: ratio(m.statusEqual, m.compared),
  };
}

/** A cached route's store and, for the memory store, what it holds now. */
export function cacheView(route: CompiledRoute) {
  const cache = route.cache;
  if (!cache) return undefined;
  const { config } = cache;
  return {
    store: config.store,
    maxBody: config.maxBody,
    ...(config.store === 'memory' ? { maxSize: config.maxSize, ...cache.store.usage?.() } : {}),
    defaultTtlMs: config.defaultTtl ?? null,
    staleIfErrorMs: config.staleIfError ?? null,
    keyBy: cache.keyBy,
  };
}

export function routeView(route: CompiledRoute, config: Snapshot['config']['routes'][number] | undefined, total: number) {
  const { action, stats } = route;
  const base = {
    index: route.index,
    name: route.name,
    match: config?.match ?? {},
    action: action.kind,
    requests: stats.requests,
    share: ratio(stats.requests, total),
  };
  const upstreams = Object.fromEntries(stats.byUpstream);
  switch (action.kind) {
    case 'upstream':
      return { ...base, upstream: action.upstream.name, upstreams, mirror: mirrorView(route), cache: cacheView(route) };
    case 'split':
      return {
        ...base,
        split: action.split.choices.map((c) => ({ upstream: c.name, weight: c.weight, requests: stats.byUpstream.get(c.name) ?? 0 })),
        stickyBy: action.split.stickyBy ?? null,
        upstreams,
        mirror: mirrorView(route),
        cache: cacheView(route),
      };
    case 'respond':
      return { ...base, status: action.respond.status };
    case 'aggregate':
      return {
        ...base,
        upstreams,
        parts: action.aggregate.parts.map((part) => ({ name: part.name, upstream: part.upstream.name, required: part.required })),
      };
    default:
      return base;
  }
}

export function routesView(snapshot: Snapshot) {
  const total = snapshot.routes.reduce((sum, route) => sum + route.stats.requests, 0);
  // Match conditions as the config view shows them: header and cookie values are secrets.
  const { routes } = redactConfig(snapshot.config) as Pick<GatewayConfig, 'routes'>;
  return { routes: snapshot.routes.map((route) => routeView(route, routes[route.index], total)) };
}
