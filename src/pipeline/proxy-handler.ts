// The data-plane request handler. One request, one direction:
//   1. target   — parse the request target (path, query); normalise the path (400 if ambiguous)
//   2. route    — first matching rule of the compiled route table (with the path's params)
//   3. auth     — the route's client authentication (auth/), then its rate limits (ratelimit/)
//   4. action   — what the route does: upstream, split (pick a side), respond (static answer),
//                 aggregate (fan out to parts, merge their JSON)
//   5. upstream — forward.ts: pool-exhausted short-cut, body read (replay buffer), exchange with failover,
//                 optional mirror copy to a shadow upstream

import type { IncomingMessage, ServerResponse } from 'node:http';
import { runAggregate } from './aggregate/run.js';
import { isTargetRefusal, readTarget, type ReadTarget } from '../routing/target.js';
import { enforceAuth } from './auth-stage.js';
import { forwardPathOf } from './forward-path.js';
import { RequestView } from '../routing/request-view.js';
import { sendStatic } from './respond.js';
import { matchRoute, type RouteMatch } from '../routing/route-table.js';
import { pickSplit } from '../routing/split.js';
import { enforceRateLimit, responsePort } from './limit-stage.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';
import type { ExchangeContext } from '../exchange/exchange.js';
import type { RequestScope } from '../exchange/request-scope.js';
import { ServerResponseSink } from '../exchange/sink.js';
import { sendProblem } from '../core/problems.js';
import { runCacheStage } from './cache-stage.js';
import { bodyReadLimit, type ReadBody } from './llm-stage.js';
import { createForwarder, leaseOf, type LlmFacts } from './forward.js';

export interface ProxyHandlerOptions {
  getSnapshot: () => Snapshot;
  context: ExchangeContext;
  proto: 'http' | 'https';
}

/** `scope` is present when telemetry follows this request (see telemetry/request-lifecycle.ts). */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, scope?: RequestScope) => void;

export { parseTarget, type RequestTarget } from '../routing/target.js';

export function createProxyHandler(options: ProxyHandlerOptions): RequestHandler {
  const { getSnapshot, context, proto } = options;
  const { forwardToUpstream, readBody, readEarly, answeredBadBody } = createForwarder(context, proto);

  return function handleProxyRequest(req, res, scope) {
    const snapshot = getSnapshot();
    const method = req.method ?? 'GET';

    // 1. target
    const target = readTarget(req.url ?? '/', snapshot.paths);
    if (isTargetRefusal(target)) {
      sendProblem(res, target.problem, target.detail);
      return;
    }

    // 2. route (a rule with body conditions has the body read first, at most the replay buffer)
    const request = new RequestView(method, target.match, target.query, req.headers, () => snapshot.clientIp(req));
    const matched = matchRoute(snapshot.routes, request);
    if (!matched && request.bodyWanted) {
      readEarly(req, res, snapshot, bodyReadLimit(snapshot), (early) => {
        if (answeredBadBody(req, res, early.body)) return;
        request.setBody(early.json);
        routed(req, res, snapshot, matchRoute(snapshot.routes, request), request, target, scope, early);
      });
      return;
    }
    routed(req, res, snapshot, matched, request, target, scope, undefined);
  };

  /** Stage 3: auth, then limits (a token policy has the body read first, for its estimate). */
  function routed(
    req: IncomingMessage,
    res: ServerResponse,
    snapshot: Snapshot,
    matched: RouteMatch<CompiledRoute> | undefined,
    request: RequestView,
    target: ReadTarget,
    scope: RequestScope | undefined,
    early: ReadBody | undefined,
  ): void {
    if (!matched) {
      sendProblem(res, 'route-not-found', `no route matches ${request.method} ${target.match}`);
      return;
    }
    const { route } = matched;
    route.stats.requests++;
    if (scope) scope.route = route;

    const limits = (identity: string | undefined) => {
      const limit = route.rateLimit;
      if (!limit) {
        act(req, res, snapshot, matched, request, target, scope, { early, reservation: undefined });
        return;
      }
      const check = (body: ReadBody | undefined) =>
        enforceRateLimit(
          limit,
          req,
          res,
          responsePort,
          route.name,
          context.observer,
          (reservation) => act(req, res, snapshot, matched, request, target, scope, { early: body, reservation }),
          { authIdentity: identity, tokens: body ? () => body.estimate.total : undefined, leaseMs: leaseOf(route) },
        );
      if (!limit.countsTokens || early) {
        check(early);
        return;
      }
      readEarly(req, res, snapshot, bodyReadLimit(snapshot, route), (body) => {
        if (!answeredBadBody(req, res, body.body)) check(body);
      });
    };
    if (route.auth) enforceAuth(route.auth, req, res, responsePort, limits);
    else limits(undefined);
  }

  /** Stage 4: what the route does. */
  function act(
    req: IncomingMessage,
    res: ServerResponse,
    snapshot: Snapshot,
    matched: RouteMatch<CompiledRoute>,
    request: RequestView,
    target: ReadTarget,
    scope: RequestScope | undefined,
    llm: LlmFacts,
  ): void {
    const { route, params } = matched;
    const { method } = request;
    const { query } = target;
    const { action } = route;
    const { reservation } = llm;
    if (action.kind !== 'upstream' && action.kind !== 'split') reservation?.settle(action.kind === 'respond' ? 0 : undefined);
    else if (reservation?.needsAnswer)
      // An answer that never went through the settling sink (a cache hit, a stored idempotent
      // answer) cost no backend work: once the client's answer is over, whatever is still
      // reserved goes back. After the sink's own settlement, this does nothing.
      res.once('close', () => setImmediate(() => reservation.settle(0)));
    if (action.kind === 'respond') {
      route.stats.responded++;
      sendStatic(res, action.respond, method, params, query);
      return;
    }
    if (action.kind === 'aggregate') {
      runAggregate({
        req,
        res,
        route,
        aggregate: action.aggregate,
        params,
        query,
        context,
        proto,
        scope,
        trustedProxies: snapshot.trustedProxies,
      });
      return;
    }
    const upstream = action.kind === 'upstream' ? action.upstream : pickSplit(action.split, request, context.random).target;
    const forwardPath = forwardPathOf(route, target, params);
    const cache = route.cache;
    if (cache) {
      // The cache stage answers from the store, or comes back with its sink (and the body, for
      // routes keyed by it) to forward through.
      runCacheStage({
        req,
        route,
        cache,
        path: target.forward,
        query: target.query,
        clientSink: new ServerResponseSink(res),
        observer: context.observer,
        readBody: () => llm.early?.body ?? readBody(req, res, snapshot, upstream.replayBuffer),
        forward: (prepared) =>
          forwardToUpstream(
            req,
            res,
            snapshot,
            route,
            upstream,
            forwardPath,
            prepared.background ? undefined : scope,
            false,
            prepared,
            llm,
          ),
      });
      return;
    }
    forwardToUpstream(req, res, snapshot, route, upstream, forwardPath, scope, false, undefined, llm);
  }
}
