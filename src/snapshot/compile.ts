import type { GatewayConfig } from '../config/schema/index.js';
import type { RouteStatsRegistry } from '../state/route-stats.js';
import { backendId, type BackendState, type BackendStateRegistry } from '../state/backend-state.js';
import { resolveBackendTls } from '../state/backend-tls.js';
import type { DispatcherRegistry } from '../state/dispatchers.js';
import type { RateLimitRegistry } from '../state/limit-registry.js';
import type { CacheRegistry } from '../state/cache-registry.js';
import type { ApiKeySetRegistry } from '../state/api-key-sets.js';
import type { HoldRegistry } from '../state/hold-registry.js';
import type { IdempotencyRegistry } from '../state/idempotency-registry.js';
import { compileHeaderEdit } from '../routing/header-edit.js';
import { compileRoute } from './compile-route.js';
import type { CompiledBackend, CompiledUpstream, Snapshot } from './snapshot.js';
import { silentObserver, type ProxyObserver } from './observer.js';
import { attachResilience } from './attach-resilience.js';
import { compileResilience } from '../resilience/policy.js';
import { clientIpResolver, trustedProxyList } from '../core/client-ip.js';

export interface RuntimeRegistries {
  states: BackendStateRegistry;
  dispatchers: DispatcherRegistry;
  routes: RouteStatsRegistry;
  /** Receives breaker and health events of backends. */
  observer?: ProxyObserver;
  limits?: RateLimitRegistry;
  cache?: CacheRegistry;
  /** Readers of the Redis sets that routes' `auth.apiKeys.redisSet` name. */
  keySets?: ApiKeySetRegistry;
  /** Hold queues by upstream name (absent: hold is off). */
  holds?: HoldRegistry;
  /** Idempotency stores by route (absent: a fresh memory store per compile). */
  idempotency?: IdempotencyRegistry;
}

/** Compiles a validated config into a snapshot, binding each backend to its live state and pool. */
export function compileSnapshot(config: GatewayConfig, file: string, registries: RuntimeRegistries): Snapshot {
  const upstreams = new Map<string, CompiledUpstream>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const backends: CompiledBackend[] = upstream.backends.map((backend, index) => {
      const url = new URL(backend.url);
      const tls = resolveBackendTls(url, upstream.tls, backend.tls);
      const { key, pool } = registries.dispatchers.get(url.origin, {
        connectTimeout: upstream.timeouts.connect,
        headersTimeout: upstream.timeouts.headers,
        bodyTimeout: upstream.timeouts.idle,
        tls,
      });
      const id = backendId(name, backend.name ?? backend.url);
      const state = registries.states.get(id);
      state.capacity.declared = { rpm: backend.rpm, tpm: backend.tpm };
      state.capacity.shared =
        backend.rpm !== undefined || backend.tpm !== undefined
          ? registries.limits?.sharedCount(config, id, backend.rpm, backend.tpm)
          : undefined;
      return {
        index,
        id,
        url: backend.url,
        name: backend.name,
        basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, ''),
        authority: url.host,
        priority: backend.priority,
        weight: backend.weight,
        dispatcher: pool,
        dispatcherKey: key,
        state,
        headerEdit: compileHeaderEdit(upstream.headers, upstream.removeHeaders, backend.headers, backend.removeHeaders),
        tls,
        llm:
          backend.model !== undefined || backend.deployment !== undefined
            ? { model: backend.model, deployment: backend.deployment, apiVersion: backend.apiVersion ?? '2024-10-21' }
            : undefined,
      };
    });
    const compiled: CompiledUpstream = {
      name,
      balance: upstream.balance,
      backends,
      throttle: {
        statuses: new Set(upstream.throttle.statuses),
        defaultCooldown: upstream.throttle.defaultCooldown,
        minCooldown: upstream.throttle.minCooldown,
        maxCooldown: upstream.throttle.maxCooldown,
        predictive: upstream.throttle.predictive,
      },
      maxAttempts: Math.min(upstream.failover.maxAttempts ?? backends.length, backends.length),
      replayBuffer: upstream.failover.replayBuffer,
      timeouts: upstream.timeouts,
      hostHeader: upstream.hostHeader,
      cursor: { current: new Float64Array(backends.length) },
      resilience: compileResilience(upstream),
      hold:
        upstream.throttle.hold && registries.holds
          ? { policy: { ...upstream.throttle.hold }, queue: registries.holds.get(name, { ...upstream.throttle.hold }) }
          : undefined,
    };
    upstreams.set(name, compiled);
    for (const backend of backends) backend.state.maxCooldownMs = upstream.throttle.maxCooldown;
    const owner = {
      observer: registries.observer ?? silentObserver,
      // Read when a probe is due, so a bus attached later (or replaced) is asked.
      probeGate: (state: BackendState, intervalMs: number) => registries.states.probeGate?.(state, intervalMs) ?? true,
    };
    for (const backend of backends) attachResilience(owner, compiled, backend);
  }

  const limits = registries.limits?.compile(config);
  const liveKeys = registries.keySets?.compile(config);
  const routes = config.routes.map((route, index) => {
    const idempotency = registries.idempotency;
    let compiled = compileRoute(route, index, upstreams, registries.routes, config.paths.caseInsensitive, liveKeys, {
      store: idempotency && ((name, settings) => idempotency.storeFor(name, settings, config.redis)),
      trustedProxies: config.listen.trustedProxies,
    });
    if (route.rateLimit && limits) compiled = { ...compiled, rateLimit: limits.forRoute(route.rateLimit) };
    if (route.cache && registries.cache) {
      const keyBy = route.cache.keyBy ?? [];
      compiled = {
        ...compiled,
        cache: {
          config: route.cache,
          store: registries.cache.storeFor(compiled.name, route.cache, config),
          locks: registries.cache.locks,
          keyBy,
          byBody: keyBy.includes('body'),
        },
      };
    }
    return compiled;
  });
  if (registries.cache && config.routes.some((route) => route.cache !== undefined)) registries.cache.connect(config);

  return {
    config,
    file,
    loadedAt: new Date(),
    routes,
    upstreams,
    limits: config.limits,
    paths: config.paths,
    trustedProxies: trustedProxyList(config.listen.trustedProxies),
    clientIp: clientIpResolver(config.listen.trustedProxies),
  };
}

/** Ids of every backend and pool a snapshot uses, so registries can drop the rest. */
export function snapshotKeys(snapshot: Snapshot): {
  states: Set<string>;
  dispatchers: Set<string>;
  routes: Set<string>;
  memoryCaches: Set<string>;
  redisCache: boolean;
  holds: Set<string>;
} {
  const states = new Set<string>();
  const dispatchers = new Set<string>();
  for (const upstream of snapshot.upstreams.values()) {
    for (const backend of upstream.backends) {
      states.add(backend.id);
      dispatchers.add(backend.dispatcherKey);
    }
  }
  const memoryCaches = new Set(snapshot.routes.filter((route) => route.cache?.store.kind === 'memory').map((route) => route.name));
  const redisCache = snapshot.config.redis !== undefined && snapshot.routes.some((route) => route.cache !== undefined);
  const holds = new Set(
    [...snapshot.upstreams.values()].filter((upstream) => upstream.hold !== undefined).map((upstream) => upstream.name),
  );
  return { states, dispatchers, routes: new Set(snapshot.routes.map((route) => route.name)), memoryCaches, redisCache, holds };
}
