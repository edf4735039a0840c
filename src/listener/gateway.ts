// Assembles a running gateway: the proxy listener (fastify, every path handed to the proxy
// handler), the admin listener, the live-state registries and the current config snapshot.

import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from '../config/schema/index.js';
import { compileSnapshot, snapshotKeys } from '../snapshot/compile.js';
import { ConfigReloader } from '../snapshot/reload.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { SecretScrubber } from '../telemetry/redact.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { ConsoleSampler } from '../telemetry/console-sampler.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import { BackendStateRegistry } from '../state/backend-state.js';
import { BackendBus, type BusTransport } from '../state/backend-bus.js';
import { RedisBusTransport } from '../state/redis-bus.js';
import { DispatcherRegistry } from '../state/dispatchers.js';
import { RouteStatsRegistry } from '../state/route-stats.js';
import { HoldRegistry } from '../state/hold-registry.js';
import { IdempotencyRegistry } from '../state/idempotency-registry.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import { RateLimitRegistry } from '../state/limit-registry.js';
import type { MemoryBucketStore } from '../ratelimit/memory-store.js';
import type { PolicyStore } from '../ratelimit/guarded-store.js';
import { CacheRegistry } from '../state/cache-registry.js';
import { ApiKeySetRegistry } from '../state/api-key-sets.js';
import { TunnelRegistry } from '../exchange/websocket-tunnel.js';
import { createAdminServer, type UpstreamsView, upstreamsView } from './admin.js';
import { createProxyServer } from './proxy-server.js';
import { createProxyHandler } from '../pipeline/proxy-handler.js';
import { createUpgradeHandler } from '../pipeline/upgrade-handler.js';
import { adminExposureWarning, isLoopbackHost } from '../config/admin-exposure.js';
import type { Http2Sessions } from './http2-guard.js';

export interface GatewayOptions {
  file?: string;
  /** The config file's text as read (to tell what is loaded: its sha256). */
  source?: string;
  logger?: Logger;
  /** An extra observer, called after the built-in metrics and decision logs. */
  observer?: ProxyObserver;
  random?: () => number;
  /** OpenTelemetry request tracer (see telemetry/tracing.ts); absent = no spans. */
  tracer?: RequestTracer;
  /** Scrubs configured secrets from log lines; updated on apply(). */
  scrubber?: SecretScrubber;
  /** Extra backend-state transports (a worker process: its cluster primary). */
  busTransports?: ReadonlyArray<(bus: BackendBus) => BusTransport>;
  /** Where `store: memory` buckets live (a worker process: the primary's, shared by all workers). */
  memoryBuckets?: (local: MemoryBucketStore) => PolicyStore;
}

export class Gateway {
  readonly logger: Logger;
  readonly states = new BackendStateRegistry();
  /** Shares backend state with peers (replicas through Redis, workers through their primary). */
  readonly bus = new BackendBus(this.states);
  #busRedis: { signature: string; transport: RedisBusTransport } | undefined;
  readonly dispatchers = new DispatcherRegistry();
  readonly routeStats = new RouteStatsRegistry();
  readonly holds = new HoldRegistry();
  readonly idempotency = new IdempotencyRegistry();
  readonly tunnels = new TunnelRegistry();
  readonly observer: ProxyObserver;
  readonly limits: RateLimitRegistry;
  readonly cache = new CacheRegistry({
    degraded: (degraded, reason) =>
      degraded
        ? this.logger.warn({ event: 'cache.degraded', reason }, 'the Redis cache store is skipped until Redis answers again')
        : this.logger.info({ event: 'cache.recovered', reason }, 'the Redis cache store answers again'),
  });
  readonly keySets: ApiKeySetRegistry;
  readonly reloader: ConfigReloader;
  readonly telemetry: Telemetry;
  readonly #scrubber: SecretScrubber | undefined;
  #snapshot: Snapshot;
  #ready = false;
  /** Whether the admin listener is bound to a loopback address (known once it listens). */
  #adminLoopback = true;
  #adminHost = '';
  #http2Sessions: Http2Sessions | undefined;
  readonly proxy: FastifyInstance;
  readonly admin: FastifyInstance;
  readonly scheme: 'http' | 'https';
  url = '';
  adminUrl = '';
  /** Where GET /admin/upstreams comes from instead of this process alone (a worker: all workers summed). */
  upstreamsSource: (() => Promise<UpstreamsView>) | undefined;

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.#scrubber = options.scrubber ?? (options.logger ? undefined : new SecretScrubber(config));
    this.logger = options.logger ?? createLogger(config.log.level, undefined, { headers: config.log.redact, scrubber: this.#scrubber });
    const random = options.random ?? Math.random;
    this.limits = new RateLimitRegistry(() => this.observer, options.memoryBuckets);
    this.keySets = new ApiKeySetRegistry(this.limits, () => this.logger);
    const getSnapshot = () => this.#snapshot;
    this.telemetry = new Telemetry({
      config,
      logger: this.logger,
      getSnapshot,
      tracer: options.tracer,
      observer: options.observer,
      random,
    });
    this.observer = this.telemetry.observer;
    for (const transport of options.busTransports ?? []) this.bus.add(transport(this.bus));
    this.#wireBus(config);
    this.#snapshot = compileSnapshot(config, options.file ?? '<inline>', {
      states: this.states,
      dispatchers: this.dispatchers,
      routes: this.routeStats,
      observer: this.observer,
      limits: this.limits,
      cache: this.cache,
      keySets: this.keySets,
      holds: this.holds,
      idempotency: this.idempotency,
    });
    warnInsecureBackends(this.#snapshot, this.logger);
    const scheme = config.listen.tls ? 'https' : 'http';
    this.reloader = new ConfigReloader(this, options.file, this.logger, this.observer, options.source);
    const context = { observer: this.observer, random };
    const handler = this.telemetry.instrument(createProxyHandler({ getSnapshot, context, proto: scheme }));

    const proxy = createProxyServer(config, {
      handler,
      upgrade: createUpgradeHandler({ getSnapshot: () => this.#snapshot, context, proto: scheme, tunnels: this.tunnels }),
      maxRequestBody: () => this.#snapshot.limits.maxRequestBody,
      getObserver: () => this.observer,
      logger: this.logger,
    });
    this.proxy = proxy.app;
    this.scheme = proxy.scheme;
    this.#http2Sessions = proxy.http2Sessions;

    this.admin = createAdminServer({
      getSnapshot,
      isReady: () => this.#ready,
      reloader: this.reloader,
      metrics: this.telemetry.metrics,
      events: this.telemetry.events,
      settings: () => this.#snapshot.config.admin,
      loopbackBind: () => this.#adminLoopback,
      console: new ConsoleSampler({ getSnapshot, tap: this.telemetry.console, buckets: this.limits.memory }),
      upstreams: () => (this.upstreamsSource ? this.upstreamsSource() : Promise.resolve(upstreamsView(this.#snapshot))),
      purgeCache: (prefix) => this.cache.purge(prefix),
    });
  }

  /** Connects (or disconnects) the Redis bus as the config's `redis` (and redis.shareState) say. */
  #wireBus(config: GatewayConfig): void {
    const redis = config.redis?.shareState ? config.redis : undefined;
    const signature = redis ? JSON.stringify(redis) : '';
    if (this.#busRedis?.signature === signature) return;
    if (this.#busRedis) void this.bus.remove(this.#busRedis.transport);
    this.#busRedis = undefined;
    if (!redis) return;
    const transport = new RedisBusTransport(redis, this.bus);
    this.bus.add(transport);
    this.#busRedis = { signature, transport };
  }

  /** An admin listener beyond loopback without a token answers /admin/* 401: say so, and how to fix it. */
  #warnUnprotectedAdmin(config: GatewayConfig): void {
    const warning = adminExposureWarning(config, this.#adminHost);
    if (warning) this.logger.warn({ event: 'admin.no_token', host: this.#adminHost, url: this.adminUrl }, warning);
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  async listen(): Promise<void> {
    const { listen, admin } = this.#snapshot.config;
    // All bounded: a replica whose Redis is down starts alone rather than not at all.
    await Promise.all([this.limits.ready(), this.cache.ready(), this.keySets.ready(), this.idempotency.ready(), this.bus.ready()]);
    await this.proxy.listen({ host: listen.host, port: listen.port });
    await this.admin.listen({ host: admin.host, port: admin.port });
    this.url = urlOf(this.proxy, this.scheme);
    this.adminUrl = urlOf(this.admin, 'http');
    this.#adminHost = (this.admin.server.address() as AddressInfo).address;
    this.#adminLoopback = isLoopbackHost(this.#adminHost);
    this.#warnUnprotectedAdmin(this.#snapshot.config);
    this.#ready = true;
  }

  /** Swaps in a new config; requests in flight finish on the snapshot they started with. */
  apply(config: GatewayConfig, file: string): Snapshot {
    const next = compileSnapshot(config, file, {
      states: this.states,
      dispatchers: this.dispatchers,
      routes: this.routeStats,
      observer: this.observer,
      limits: this.limits,
      cache: this.cache,
      keySets: this.keySets,
      holds: this.holds,
    });
    warnInsecureBackends(next, this.logger);
    if (config.workers !== this.#snapshot.config.workers)
      this.logger.warn(
        { event: 'config.workers_unchanged', running: this.#snapshot.config.workers, file: config.workers },
        'workers is read at start only: restart the gateway to change the number of worker processes',
      );
    this.#wireBus(config);
    if (this.#adminHost) this.#warnUnprotectedAdmin(config);
    this.#snapshot = next;
    this.#scrubber?.update(config);
    const keys = snapshotKeys(next);
    this.states.retain(keys.states);
    void this.dispatchers.retain(keys.dispatchers);
    this.routeStats.retain(keys.routes);
    this.cache.retain(keys.memoryCaches, keys.redisCache);
    this.holds.retain(keys.holds);
    this.idempotency.retain(
      new Set(next.routes.filter((route) => route.idempotency !== undefined).map((route) => route.name)),
      config.redis,
      config.routes.some((route) => route.idempotency !== undefined && route.idempotency.store !== 'memory'),
    );
    return next;
  }

  /** Stops accepting, lets in-flight requests finish (up to drainMs, default shutdown.drain), then closes pools. */
  async close(drainMs = this.#snapshot.config.shutdown.drain): Promise<void> {
    this.#ready = false;
    this.reloader.stopWatching();
    // An HTTP/2 server has no connection list (fastify closes its sessions); HTTP/1 ones do.
    const server = this.proxy.server as Partial<Pick<typeof this.proxy.server, 'closeAllConnections' | 'closeIdleConnections'>>;
    // Held requests wait until the drain deadline, then get 503 with Retry-After; a moment later
    // whatever is left is cut.
    const force = setTimeout(() => {
      this.holds.evictAll();
      setTimeout(() => {
        server.closeAllConnections?.();
        this.#http2Sessions?.destroyAll();
      }, 100).unref();
    }, drainMs);
    force.unref();
    // Keep-alive connections become idle as their last response ends: close them then, so a
    // drained gateway stops as soon as its in-flight requests are done.
    const sweep = setInterval(() => server.closeIdleConnections?.(), 50);
    sweep.unref();
    // Open WebSocket tunnels get a Close frame (1001) on both sides; they would hold close() forever.
    this.tunnels.closeAll();
    try {
      await Promise.all([this.proxy.close(), this.admin.close()]);
    } finally {
      clearTimeout(force);
      clearInterval(sweep);
      this.states.shutdown();
      this.telemetry.close();
      this.cache.close();
      this.keySets.close();
      await Promise.all([this.dispatchers.closeAll(), this.limits.close(), this.idempotency.close(), this.bus.close()]);
    }
  }
}

function urlOf(app: FastifyInstance, scheme: 'http' | 'https'): string {
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** insecureSkipVerify is for testing: say so loudly at start and on every reload. */
function warnInsecureBackends(snapshot: Snapshot, logger: Logger): void {
  for (const upstream of snapshot.upstreams.values()) {
    for (const backend of upstream.backends) {
      if (backend.tls && !backend.tls.rejectUnauthorized) {
        logger.warn(
          { event: 'tls.insecure', upstream: upstream.name, backend: backend.name ?? backend.url },
          'insecureSkipVerify: the backend certificate is NOT verified',
        );
      }
    }
  }
}
