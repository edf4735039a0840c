// Assembles a running gateway: the proxy listener (fastify, every path handed to the proxy
// handler), the admin listener, the live-state registries and the current config snapshot.

import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from '../config/schema/index.js';
import { compileSnapshot, snapshotKeys } from '../runtime/compile.js';
import type { Snapshot } from '../runtime/snapshot.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { logObserver } from '../telemetry/log-observer.js';
import { BackendStateRegistry } from '../upstream/backend-state.js';
import { DispatcherRegistry } from '../upstream/dispatchers.js';
import { RouteStatsRegistry } from '../routing/route-stats.js';
import type { ProxyObserver } from '../upstream/observer.js';
import { createAdminServer } from './admin.js';
import { createProxyHandler } from './proxy-handler.js';
import { sendProblem } from './problems.js';

export interface GatewayOptions {
  file?: string;
  logger?: Logger;
  observer?: ProxyObserver;
  random?: () => number;
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'] as const;

export class Gateway {
  readonly logger: Logger;
  readonly states = new BackendStateRegistry();
  readonly dispatchers = new DispatcherRegistry();
  readonly routeStats = new RouteStatsRegistry();
  #snapshot: Snapshot;
  #ready = false;
  readonly proxy: FastifyInstance;
  readonly admin: FastifyInstance;
  url = '';
  adminUrl = '';

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.logger = options.logger ?? createLogger(config.log.level);
    this.#snapshot = compileSnapshot(config, options.file ?? '<inline>', { states: this.states, dispatchers: this.dispatchers, routes: this.routeStats });
    const handler = createProxyHandler({
      getSnapshot: () => this.#snapshot,
      context: { observer: options.observer ?? logObserver(this.logger), random: options.random ?? Math.random },
      proto: 'http',
    });

    this.proxy = Fastify({
      logger: false,
      routerOptions: { maxParamLength: 8192 },
      http: { maxHeaderSize: config.limits.maxHeaderSize },
      return503OnClosing: true,
      // A URL fastify's router cannot decode (e.g. "%zz") goes to the proxy handler too, whose
      // path normalisation answers it with a problem+json 400.
      frameworkErrors: (_error, request, reply) => {
        reply.hijack();
        handler(request.raw, reply.raw);
      },
    });
    // Bodies are never parsed: the proxy handler streams or buffers them itself.
    this.proxy.removeAllContentTypeParsers();
    this.proxy.addContentTypeParser('*', (_request, _payload, done) => done(null));
    this.proxy.route({
      method: [...ALL_METHODS],
      url: '/*',
      handler: (request, reply) => {
        reply.hijack();
        handler(request.raw, reply.raw);
      },
    });
    this.proxy.setNotFoundHandler((request, reply) => {
      reply.hijack();
      handler(request.raw, reply.raw);
    });
    this.proxy.setErrorHandler((error, request, reply) => {
      this.logger.error({ err: error, method: request.method }, 'request failed inside the gateway');
      reply.hijack();
      sendProblem(reply.raw, 'internal', 'the gateway failed to handle this request');
    });

    this.admin = createAdminServer({ getSnapshot: () => this.#snapshot, isReady: () => this.#ready });
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  async listen(): Promise<void> {
    const { listen, admin } = this.#snapshot.config;
    await this.proxy.listen({ host: listen.host, port: listen.port });
    await this.admin.listen({ host: admin.host, port: admin.port });
    this.url = urlOf(this.proxy);
    this.adminUrl = urlOf(this.admin);
    this.#ready = true;
  }

  /** Swaps in a new config; requests in flight finish on the snapshot they started with. */
  apply(config: GatewayConfig, file: string): Snapshot {
    const next = compileSnapshot(config, file, { states: this.states, dispatchers: this.dispatchers, routes: this.routeStats });
    this.#snapshot = next;
    const keys = snapshotKeys(next);
    this.states.retain(keys.states);
    void this.dispatchers.retain(keys.dispatchers);
    this.routeStats.retain(keys.routes);
    return next;
  }

  /** Stops accepting, lets in-flight requests finish (up to drainMs), then closes pools. */
  async close(drainMs = 15_000): Promise<void> {
    this.#ready = false;
    const server = this.proxy.server;
    const force = setTimeout(() => server.closeAllConnections(), drainMs);
    force.unref();
    // Keep-alive connections become idle as their last response ends: close them then, so a
    // drained gateway stops as soon as its in-flight requests are done.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    sweep.unref();
    try {
      await Promise.all([this.proxy.close(), this.admin.close()]);
    } finally {
      clearTimeout(force);
      clearInterval(sweep);
      await this.dispatchers.closeAll();
    }
  }
}

function urlOf(app: FastifyInstance): string {
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
