// The admin listener (loopback by default): liveness, readiness, and the live view of pools.

import Fastify, { type FastifyInstance } from 'fastify';
import { registerTelemetryRoutes } from './admin-telemetry.js';
import { redactUrl } from '../config/redact.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { ConfigReloader } from '../snapshot/reload.js';
import { registerConfigAdmin } from './admin-config.js';
import { routesView } from './admin-views.js';
import type { EventBuffer } from '../telemetry/event-buffer.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { type AdminGuardOptions, registerAdminGuard } from './admin-auth.js';
import { registerSessionRoutes } from './admin-session.js';
import type { ConsoleSampler } from '../telemetry/console-sampler.js';
import { backendStateName } from '../telemetry/backend-view.js';
import { registerConsole } from './console/routes.js';
import { adminBackendId, registerBackendAdmin } from './admin-backends.js';
import { problemBody } from '../core/problems.js';

export interface AdminOptions extends AdminGuardOptions {
  getSnapshot: () => Snapshot;
  isReady: () => boolean;
  reloader?: ConfigReloader;
  /** Prometheus metrics at GET /metrics (absent when metrics.enabled is false). */
  metrics?: GatewayMetrics | undefined;
  /** Recent decision events at GET /admin/events. */
  events?: EventBuffer | undefined;
  /** The live console at /console and its feed at /admin/console/*. */
  console?: ConsoleSampler | undefined;
  /** GET /admin/upstreams from elsewhere (a worker process: every worker's counters summed). */
  upstreams?: (() => Promise<UpstreamsView>) | undefined;
  /** DELETE /admin/cache?prefix=: drops cached answers whose path + query starts with prefix. */
  purgeCache?: ((prefix: string) => Promise<{ memory: number; redis: number | undefined }>) | undefined;
}

export type UpstreamsView = ReturnType<typeof upstreamsView>;

const SUMMED = ['inFlight', 'queued', 'requests', 'throttled', 'errors'] as const;

/** One view from several processes' views of the same config: their counters summed, the rest from the first. */
export function sumUpstreamsViews(views: readonly UpstreamsView[]): UpstreamsView {
  const [first, ...rest] = views;
  if (!first) return { upstreams: {} };
  const merged = structuredClone(first);
  for (const [name, upstream] of Object.entries(merged.upstreams)) {
    const backends = (upstream as { backends: Array<Record<string, unknown>> }).backends;
    for (const other of rest) {
      const theirs = (other.upstreams[name] as { backends?: Array<Record<string, unknown>> } | undefined)?.backends;
      backends.forEach((backend, i) => {
        const match = theirs?.[i];
        if (!match || match.id !== backend.id) return;
        for (const field of SUMMED) backend[field] = Number(backend[field]) + Number(match[field]);
      });
    }
  }
  return merged;
}

export function upstreamsView(snapshot: Snapshot, now = Date.now()): { upstreams: Record<string, unknown> } {
  const upstreams: Record<string, unknown> = {};
  for (const upstream of snapshot.upstreams.values()) {
    upstreams[upstream.name] = {
      balance: upstream.balance,
      maxAttempts: upstream.maxAttempts,
      backends: upstream.backends.map((backend) => {
        const { state } = backend;
        const cooling = state.isCooling(now);
        const { breaker, health } = state;
        return {
          id: adminBackendId(upstream, backend),
          url: redactUrl(backend.url),
          ...(backend.name ? { name: backend.name } : {}),
          // Names only: the values are credentials.
          ...(backend.headerEdit
            ? { setsHeaders: backend.headerEdit.set.map(([name]) => name), removesHeaders: backend.headerEdit.remove }
            : {}),
          ...(backend.tls
            ? {
                tls: {
                  ca: backend.tls.caFile ?? 'system',
                  verify: backend.tls.rejectUnauthorized,
                  servername: backend.tls.servername ?? null,
                },
              }
            : {}),
          priority: backend.priority,
          weight: backend.weight,
          state: backendStateName(state, now),
          adminMode: state.adminMode,
          cooldownUntil: cooling ? new Date(state.cooldownUntil).toISOString() : null,
          cooldownRemainingMs: cooling ? state.cooldownUntil - now : 0,
          lastCooldown: state.lastCooldown
            ? {
                until: new Date(state.lastCooldown.until).toISOString(),
                source: state.lastCooldown.source,
                value: state.lastCooldown.value,
                setAt: new Date(state.lastCooldown.setAt).toISOString(),
              }
            : null,
          capacity: state.capacity ? state.capacity.view(now) : null,
          inFlight: state.inFlight,
          queued: state.queued,
          maxConcurrent: Number.isFinite(state.maxConcurrent) ? state.maxConcurrent : null,
          breaker: breaker
            ? {
                state: breaker.state,
                openedAt: breaker.openedAt ? new Date(breaker.openedAt).toISOString() : null,
                halfOpenAt: breaker.halfOpenAt ? new Date(breaker.halfOpenAt).toISOString() : null,
              }
            : null,
          health: health
            ? {
                healthy: health.healthy,
                lastProbeAt: health.lastProbeAt ? new Date(health.lastProbeAt).toISOString() : null,
                lastError: health.lastError === undefined ? null : redactUrl(health.lastError),
              }
            : null,
          requests: state.requests,
          throttled: state.throttled,
          errors: state.errors,
        };
      }),
    };
  }
  return { upstreams };
}

/** Admin requests carry small bodies at most (a sign-in token); none is parsed before the guard ran. */
const ADMIN_BODY_LIMIT = 16 * 1024;

export function createAdminServer(options: AdminOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: ADMIN_BODY_LIMIT });
  registerAdminGuard(app, options);
  // Bodies stay text: the sign-in reads its form or JSON itself, and an empty JSON reload is fine.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  registerSessionRoutes(app, () => options.settings().token);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (!options.isReady()) return reply.code(503).send({ status: 'starting' });
    return { status: 'ready', config: options.getSnapshot().file, loadedAt: options.getSnapshot().loadedAt.toISOString() };
  });
  app.get('/admin/upstreams', async () => (options.upstreams ? options.upstreams() : upstreamsView(options.getSnapshot())));
  app.get('/admin/routes', async () => routesView(options.getSnapshot()));
  registerBackendAdmin(app, options.getSnapshot);
  if (options.reloader) registerConfigAdmin(app, options.getSnapshot, options.reloader);
  registerTelemetryRoutes(app, options);
  if (options.console) registerConsole(app, options.console, options.events);
  const purgeCache = options.purgeCache;
  if (purgeCache) {
    app.delete<{ Querystring: { prefix?: string } }>('/admin/cache', async (request, reply) => {
      const prefix = request.query.prefix;
      if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
        return reply
          .code(400)
          .type('application/problem+json')
          .send(problemBody('bad-request', 'prefix is required and starts with "/" (use prefix=/ to purge everything)'));
      }
      const purged = await purgeCache(prefix);
      return { prefix, purged: { memory: purged.memory, redis: purged.redis ?? null } };
    });
  }
  return app;
}
