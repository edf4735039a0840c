import { z } from 'zod';
import { removeHeadersSchema } from './headers.js';
import { routeRateLimit } from './ratelimit.js';
import { authSchema } from './auth.js';
import { aggregateSchema } from './aggregate.js';
import { matchSchema } from './match.js';
import { mirrorSchema, respondSchema, rewriteSchema, ROUTE_ACTIONS, splitSchema, stickyBySchema } from './route-actions.js';
import { fallbackSchema } from './resilience.js';
import { cacheSchema } from './cache.js';
import { idempotencySchema } from './idempotency.js';

export { HTTP_METHODS, matchSchema } from './match.js';
export { rewriteSchema } from './route-actions.js';

export const routeSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    match: matchSchema.prefault({}),
    upstream: z.string().min(1).optional().meta({ description: 'Action: forward to this upstream.' }),
    split: splitSchema.optional().meta({ description: 'Action: weighted routing across upstreams.' }),
    stickyBy: stickyBySchema.optional(),
    respond: respondSchema.optional().meta({ description: 'Action: a static response.' }),
    aggregate: aggregateSchema
      .optional()
      .meta({ description: 'Action: call several upstreams in parallel and answer their merged JSON (docs/aggregation.md).' }),
    rewrite: rewriteSchema.optional(),
    mirror: mirrorSchema.optional(),
    removeHeaders: removeHeadersSchema.optional(),
    fallback: fallbackSchema.optional(),
    rateLimit: routeRateLimit.optional(),
    idempotency: idempotencySchema.optional(),
    auth: authSchema.optional(),
    cache: cacheSchema.optional(),
  })
  .superRefine((route, ctx) => {
    const actions = ROUTE_ACTIONS.filter((key) => route[key] !== undefined);
    if (actions.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: actions.length > 1 ? [actions[1]!] : [],
        message:
          actions.length === 0
            ? `a route needs one action: ${ROUTE_ACTIONS.join(', ')}`
            : `a route has exactly one action, found ${actions.join(' and ')}`,
      });
    }
    if (route.stickyBy !== undefined && route.split === undefined)
      ctx.addIssue({ code: 'custom', path: ['stickyBy'], message: 'stickyBy only applies to split' });
    if (route.respond !== undefined && route.mirror !== undefined)
      ctx.addIssue({ code: 'custom', path: ['mirror'], message: 'a respond route has nothing to mirror' });
    if (route.aggregate !== undefined && route.mirror !== undefined)
      ctx.addIssue({ code: 'custom', path: ['mirror'], message: 'mirror applies to upstream and split actions, not aggregate' });
    if (route.aggregate !== undefined && route.rewrite !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['rewrite'],
        message: 'rewrite applies to upstream and split actions, not aggregate (parts have their own paths)',
      });
    if (route.respond !== undefined && route.rewrite !== undefined)
      ctx.addIssue({ code: 'custom', path: ['rewrite'], message: 'rewrite applies to upstream and split actions, not respond' });
    if (route.idempotency !== undefined && route.upstream === undefined && route.split === undefined)
      ctx.addIssue({ code: 'custom', path: ['idempotency'], message: 'idempotency applies to upstream and split actions' });
    if (route.fallback !== undefined && route.upstream === undefined && route.split === undefined)
      ctx.addIssue({ code: 'custom', path: ['fallback'], message: 'fallback applies to upstream and split actions' });
    if (route.cache !== undefined && route.upstream === undefined && route.split === undefined)
      ctx.addIssue({ code: 'custom', path: ['cache'], message: 'cache applies to upstream and split actions' });
    const rewrite = route.rewrite;
    if (rewrite) {
      const pathRewrites = [
        rewrite.stripPrefix !== undefined || rewrite.addPrefix !== undefined,
        rewrite.replacePrefix !== undefined,
        rewrite.path !== undefined,
      ].filter(Boolean).length;
      if (pathRewrites > 1)
        ctx.addIssue({ code: 'custom', path: ['rewrite'], message: 'use one of stripPrefix/addPrefix, replacePrefix, path' });
      const pattern = route.match.path ?? route.match.exact ?? '/';
      const params = new Set(pattern.split('/').filter((s) => s.startsWith(':')));
      for (const segment of (rewrite.path ?? '').split('/')) {
        if (segment.startsWith(':') && !params.has(segment))
          ctx.addIssue({ code: 'custom', path: ['rewrite', 'path'], message: `${segment} is not a parameter of the match path` });
      }
    }
  });

export type RouteConfig = z.output<typeof routeSchema>;
