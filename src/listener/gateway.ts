// Assembles a running gateway: the proxy listener (fastify, every path handed to the proxy
// handler), the admin listener, the live-state registries and the current config snapshot.

import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
import { DispatcherRegistry } from '../state/dispatchers.js';
import { RouteStatsRegistry } from '../state/route-stats.js';
import { HoldRegistry } from '../state/hold-registry.js';
import { IdempotencyRegistry } from '../state/idempotency-registry.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import { RateLimitRegistry } from '../state/limit-registry.js';
import { CacheRegistry } from '../state/cache-registry.js';
import { ApiKeySetRegistry } from '../state/api-key-sets.js';
import { TunnelRegistry } from '../exchange/websocket-tunnel.js';
import { createAdminServer } from './admin.js';
import { createListener } from './listener.js';
import { createProxyHandler } from '../pipeline/proxy-handler.js';
import { createUpgradeHandler } from '../pipeline/upgrade-handler.js';
import { sendProblem } from '../core/problems.js';
import { adminExposureWarning, isLoopbackHost } from '../config/admin-exposure.js';
import { declaredLength } from '../pipeline/client-body.js';
import { createClientErrorHandler } from './client-errors.js';
import { guardHttp2Sessions, type Http2Sessions } from './http2-guard.js';
import type { Http2SecureServer } from 'node:http2';

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
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'] as const;

export class Gateway {
  readonly logger: Logger;
  readonly states = new BackendStateRegistry();
  readonly dispatchers = new DispatcherRegistry();
  readonly routeStats = new RouteStatsRegistry();
  readonly holds = new HoldRegistry();
  readonly idempotency = new IdempotencyRegistry();
  readonly tunnels = new TunnelRegistry();
  readonly observer: ProxyObserver;
  readonly limits = new RateLimitRegistry(() => this.observer);
  readonly cache = new CacheRegistry({
    degraded: (degraded, reason) =>
      degraded
        ? this.logger.warn({ event: 'cache.degraded', reason }, 'the Redis cache store is skipped until Redis answers again')
        : this.logger.info({ event: 'cache.recovered', reason }, 'the Redis cache store answers again'),
  });
  readonly keySets = new ApiKeySetRegistry(this.limits, () => this.logger);
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

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.#scrubber = options.scrubber ?? (options.logger ? undefined : new SecretScrubber(config));
    this.logger = options.logger ?? createLogger(config.log.level, undefined, { headers: config.log.redact, scrubber: this.#scrubber });
    const random = options.random ?? Math.random;
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

    // A request the handler throws on (a defect) gets a problem+json 500, never a crash.
    const answerDefect = (error: unknown, method: string | undefined, res: ServerResponse) => {
      this.logger.error({ err: error, method }, 'request failed inside the gateway');
      sendProblem(res, 'internal', 'the gateway failed to handle this request');
    };
    const direct = (req: IncomingMessage, res: ServerResponse) => {
      try {
        handler(req, res);
      } catch (error) {
        answerDefect(error, req.method, res);
      }
    };
    const listener = createListener(
      config,
      {
        // Unparsable requests (400), oversized headers (431) and slow clients (408) get problem+json.
        clientErrorHandler: createClientErrorHandler(() => this.observer),
        // HTTP/2 listeners route through fastify: a URL its router cannot decode (e.g. "%zz")
        // goes to the proxy handler too, whose path normalisation answers it with a problem+json 400.
        frameworkErrors: (_error, request, reply) => {
          reply.hijack();
          handler(request.raw, reply.raw);
        },
      },
      direct,
    );
    this.proxy = listener.app;
    this.scheme = listener.scheme;
    // Expect: 100-continue: a body declared too large is refused before the client sends it.
    this.proxy.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const limit = this.#snapshot.limits.maxRequestBody;
      const declared = declaredLength(req);
      if (declared !== undefined && declared > limit) {
        sendProblem(res, 'payload-too-large', `the request body exceeds ${limit} bytes`, { headers: { connection: 'close' } });
        return;
      }
      res.writeContinue();
      this.proxy.server.emit('request', req, res);
    });
    if (listener.http2) {
      this.#http2Sessions = guardHttp2Sessions(this.proxy.server as unknown as Http2SecureServer, {
        limits: config.listen.http2Limits,
        keepAliveIdleMs: config.listen.timeouts.keepAliveIdle,
        getObserver: () => this.observer,
      });
    }
    // HTTP/2 streams start one turn later: a stream the client reset in the same read (rapid
    // reset) is gone by then and never reaches a backend.
    const routed = (req: IncomingMessage, res: ServerResponse) => {
      if (req.httpVersionMajor !== 2) {
        handler(req, res);
        return;
      }
      setImmediate(() => {
        if (streamGone(res)) this.observer.clientProtocolError('http2-reset-before-start');
        else handler(req, res);
      });
    };
    // WebSocket upgrades arrive beside fastify's routing, on the HTTP/1.1 server's 'upgrade' event.
    this.proxy.server.on(
      'upgrade',
      createUpgradeHandler({ getSnapshot: () => this.#snapshot, context, proto: scheme, tunnels: this.tunnels }),
    );
    // Bodies are never parsed: the proxy handler streams or buffers them itself.
    this.proxy.removeAllContentTypeParsers();
    this.proxy.addContentTypeParser('*', (_request, _payload, done) => done(null));
    this.proxy.route({
      method: [...ALL_METHODS],
      url: '/*',
      handler: (request, reply) => {
        reply.hijack();
        routed(request.raw, reply.raw);
      },
    });
    this.proxy.setNotFoundHandler((request, reply) => {
      reply.hijack();
      routed(request.raw, reply.raw);
    });
    this.proxy.setErrorHandler((error, request, reply) => {
      reply.hijack();
      answerDefect(error, request.method, reply.raw);
    });

    this.admin = createAdminServer({
      getSnapshot,
      isReady: () => this.#ready,
      reloader: this.reloader,
      metrics: this.telemetry.metrics,
      events: this.telemetry.events,
      settings: () => this.#snapshot.config.admin,
      loopbackBind: () => this.#adminLoopback,
      console: new ConsoleSampler({ getSnapshot, tap: this.telemetry.console, buckets: this.limits.memory }),
      purgeCache: (prefix) => this.cache.purge(prefix),
    });
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
    await Promise.all([this.limits.ready(), this.cache.ready(), this.keySets.ready(), this.idempotency.ready()]);
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
      await Promise.all([this.dispatchers.closeAll(), this.limits.close(), this.idempotency.close()]);
    }
  }
}

/** True when an HTTP/2 response's stream is closed (reset by the client, or its connection gone). */
function streamGone(res: ServerResponse): boolean {
  const stream = (res as ServerResponse & { stream?: { destroyed: boolean; closed: boolean } }).stream;
  return stream === undefined || stream.destroyed || stream.closed;
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
