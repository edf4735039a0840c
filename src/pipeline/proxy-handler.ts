// The data-plane request handler. One request, one direction:
//   1. target   — parse the request target (path, query); normalise the path (400 if ambiguous)
//   2. route    — first matching rule of the compiled route table (with the path's params)
//   3. auth     — the route's client authentication (auth/), then its rate limits (ratelimit/)
//   4. action   — what the route does: upstream, split (pick a side), respond (static answer),
//                 aggregate (fan out to parts, merge their JSON)
//   5. upstream — pool-exhausted short-cut, body read (replay buffer), exchange with failover,
//                 optional mirror copy to a shadow upstream

import type { IncomingMessage, ServerResponse } from 'node:http';
import { runAggregate } from './aggregate/run.js';
import { startMirror } from './mirror.js';
import { isTargetRefusal, readTarget, type ReadTarget } from '../routing/target.js';
import { enforceAuth } from './auth-stage.js';
import { forwardPathOf } from './forward-path.js';
import { RequestView } from '../routing/request-view.js';
import { sendStatic } from './respond.js';
import { applyHeaderOps } from '../routing/rewrite.js';
import { matchRoute, type RouteMatch } from '../routing/route-table.js';
import { HeaderRewriteSink } from '../exchange/delegating-sink.js';
import { pickSplit } from '../routing/split.js';
import { enforceRateLimit, responsePort } from './limit-stage.js';
import type { CompiledRoute, CompiledUpstream, Snapshot } from '../snapshot/snapshot.js';
import { ProxyExchange, type ExchangeContext } from '../exchange/exchange.js';
import { answerPoolBlocked, reportSkippedCooling, takeFallback } from '../exchange/pool-answers.js';
import { removeHeaders } from '../routing/header-edit.js';
import type { RequestScope } from '../exchange/request-scope.js';
import { isReady, poolBlock } from '../balance/select.js';
import { ServerResponseSink, type ResponseSink } from '../exchange/sink.js';
import { readClientBody, type ClientBody } from './client-body.js';
import { buildRequestHeaders } from '../exchange/forward-headers.js';
import { sendProblem } from '../core/problems.js';
import type { ForwardRequest } from '../exchange/forward-request.js';
import type { Reservation } from '../ratelimit/route-limit.js';
import { askForUsage, bodyReadLimit, ReadBody, readBodyEarly, settlingSink } from './llm-stage.js';

/**
 * The request's token estimate, for steering by backends' remaining tokens: the one the limits
 * reserved, or — only when a backend of the pool announced a token budget — counted now.
 */
function tokenEstimateFor(
  upstream: CompiledUpstream,
  body: ClientBody,
  early: ReadBody | undefined,
  reservation: Reservation | undefined,
): number | undefined {
  if (early?.body === body && reservation?.estimate !== undefined) return early.estimate.total;
  if (body.kind !== 'buffer' || !upstream.backends.some((backend) => backend.state.capacity?.tokens !== undefined)) return undefined;
  return (early?.body === body ? early : new ReadBody(body)).estimate.total;
}

/** How long a reservation may stay unsettled: the route's request deadline, else 10 minutes. */
function leaseOf(route: CompiledRoute): number {
  const upstream = route.action.kind === 'upstream' ? route.action.upstream : undefined;
  return upstream?.resilience.retry?.deadline ?? 600_000;
}

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

  /** Stage 5: send the request through an upstream pool and stream the answer back. */
  function forwardToUpstream(
    req: IncomingMessage,
    res: ServerResponse,
    snapshot: Snapshot,
    route: CompiledRoute,
    upstream: CompiledUpstream,
    forwardPath: string,
    scope: RequestScope | undefined,
    early: ReadBody | undefined,
    reservation: Reservation | undefined,
    isFallback = false,
  ): void {
    // No backend can serve (all cooling, breakers open, unhealthy): answer at once, without
    // reading the body or calling anyone — or take the route's fallback. Backends that are only
    // full go on: the request waits in a concurrency queue.
    const now = Date.now();
    if (!upstream.backends.some((backend) => isReady(backend, now))) {
      const block = poolBlock(upstream.backends, now);
      if (block.kind !== 'full') {
        reportSkippedCooling(upstream, now, context.observer);
        const sink = new ServerResponseSink(res);
        const fellBack =
          !isFallback &&
          takeFallback(route, sink, (fallbackUpstream) => {
            forwardToUpstream(req, res, snapshot, route, fallbackUpstream, forwardPath, scope, early, reservation, true);
            return true;
          });
        if (!fellBack) {
          // Never reached a backend: the client's limits get everything back.
          reservation?.refund();
          answerPoolBlocked(sink, route, upstream, block, now, context.observer);
        }
        return;
      }
    }
    route.stats.countUpstream(upstream.name);

    const start = (body: ClientBody) => {
      switch (body.kind) {
        case 'too-large':
          reservation?.refund();
          sendProblem(res, 'payload-too-large', `the request body exceeds ${body.limit} bytes`, { headers: { connection: 'close' } });
          return;
        case 'aborted':
          reservation?.refund();
          res.destroy();
          return;
      }
      const headers = buildRequestHeaders(req, {
        host: undefined,
        proto,
        dropContentLength: body.kind === 'buffer',
        trustedProxies: snapshot.trustedProxies,
      });
      if (body.kind === 'stream' && body.length === undefined) delete headers['content-length'];
      if (route.removeHeaders) removeHeaders(headers, route.removeHeaders);
      if (route.requestHeaders) applyHeaderOps(headers, route.requestHeaders);
      const forward: ForwardRequest = {
        method: req.method ?? 'GET',
        path: forwardPath,
        headers,
        body: body.kind === 'none' ? null : body.body,
        replayable: body.kind !== 'stream',
        clientHost: req.headers.host ?? (req.headers[':authority'] as string | undefined),
        scope,
        json: early?.body === body ? early.json : undefined,
        tokenEstimate: tokenEstimateFor(upstream, body, early, reservation),
      };
      let sink: ResponseSink = new ServerResponseSink(res);
      let exchange: ProxyExchange | undefined;
      if (reservation?.needsAnswer) {
        const strip = reservation.estimate !== undefined && askForUsage(forward);
        sink = settlingSink(sink, reservation, early, strip, route, context.observer, forward, () => exchange);
      }
      if (route.responseHeaders) sink = new HeaderRewriteSink(sink, route.responseHeaders);
      if (route.mirror) sink = startMirror(route, route.mirror, sink, forward, context);
      exchange = new ProxyExchange(sink, route, upstream, forward, context, isFallback);
      exchange.start();
    };

    if (early) {
      start(early.body);
      return;
    }
    const body = readClientBody(req, upstream.replayBuffer, snapshot.limits.maxRequestBody);
    if (body instanceof Promise) body.then(start, () => res.destroy());
    else start(body);
  }

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
      readBodyEarly(
        req,
        bodyReadLimit(snapshot),
        snapshot.limits.maxRequestBody,
        (early) => {
          request.setBody(early.json);
          routed(req, res, snapshot, matchRoute(snapshot.routes, request), request, target, scope, early);
        },
        () => res.destroy(),
      );
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
    if (early && early.body.kind !== 'buffer' && early.body.kind !== 'stream' && early.body.kind !== 'none') {
      if (early.body.kind === 'too-large')
        sendProblem(res, 'payload-too-large', `the request body exceeds ${early.body.limit} bytes`, { headers: { connection: 'close' } });
      else res.destroy();
      return;
    }
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
        act(req, res, snapshot, matched, request, target, scope, early, undefined);
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
          (reservation) => act(req, res, snapshot, matched, request, target, scope, body, reservation),
          { authIdentity: identity, tokens: body ? () => body.estimate.total : undefined, leaseMs: leaseOf(route) },
        );
      if (!limit.countsTokens || early) {
        check(early);
        return;
      }
      readBodyEarly(
        req,
        bodyReadLimit(snapshot, route),
        snapshot.limits.maxRequestBody,
        (body) => {
          if (body.body.kind === 'too-large') {
            sendProblem(res, 'payload-too-large', `the request body exceeds ${body.body.limit} bytes`, {
              headers: { connection: 'close' },
            });
            return;
          }
          if (body.body.kind === 'aborted') {
            res.destroy();
            return;
          }
          check(body);
        },
        () => res.destroy(),
      );
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
    early: ReadBody | undefined,
    reservation: Reservation | undefined,
  ): void {
    const { route, params } = matched;
    const { method } = request;
    const { query } = target;
    const { action } = route;
    if (action.kind !== 'upstream' && action.kind !== 'split') reservation?.settle(action.kind === 'respond' ? 0 : undefined);
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
    forwardToUpstream(req, res, snapshot, route, upstream, forwardPath, scope, early, reservation);
  }
}
