// Stage 5 of the request path: send a request through an upstream pool and stream the answer
// back — the pool-blocked short-cut (fallback, 429/503, or a hold), the body under the listener's
// limits (replay buffer), the cache and idempotency guards, token settling, mirroring, and the
// exchange with failover — and the early body read for rules and limits that need the body.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { startMirror } from './mirror.js';
import { applyHeaderOps } from '../routing/rewrite.js';
import { HeaderRewriteSink } from '../exchange/delegating-sink.js';
import type { CompiledRoute, CompiledUpstream, Snapshot } from '../snapshot/snapshot.js';
import { ProxyExchange, type ExchangeContext } from '../exchange/exchange.js';
import { answerPoolBlocked, reportSkippedCooling, takeFallback } from '../exchange/pool-answers.js';
import { removeHeaders } from '../routing/header-edit.js';
import type { RequestScope } from '../exchange/request-scope.js';
import { isReady, poolBlock } from '../balance/select.js';
import { ServerResponseSink, type ResponseSink } from '../exchange/sink.js';
import { readClientBody, type BodyTimeout, type ClientBody } from './client-body.js';
import { buildRequestHeaders } from '../exchange/forward-headers.js';
import { sendProblem } from '../core/problems.js';
import type { PreparedForward } from './cache-stage.js';
import { guardIdempotent, idempotencyKeyOf } from './idempotency-stage.js';
import type { ForwardRequest } from '../exchange/forward-request.js';
import type { Reservation } from '../ratelimit/route-limit.js';
import { askForUsage, ReadBody, settlingSink } from './llm-stage.js';

/** What the LLM side of the request path carries to the forward: the body read early, the limits' reservation. */
export interface LlmFacts {
  readonly early: ReadBody | undefined;
  readonly reservation: Reservation | undefined;
}

export const NO_LLM: LlmFacts = { early: undefined, reservation: undefined };

/**
 * The request's token estimate, for steering by backends' remaining tokens: the one the limits
 * reserved, or — only when a backend of the pool announced a token budget — counted now.
 */
function tokenEstimateFor(upstream: CompiledUpstream, body: ClientBody, llm: LlmFacts): number | undefined {
  const { early, reservation } = llm;
  if (early?.body === body && reservation?.estimate !== undefined) return early.estimate.total;
  if (body.kind !== 'buffer' || !upstream.backends.some((backend) => backend.state.capacity.tokenBudget !== undefined)) return undefined;
  return (early?.body === body ? early : new ReadBody(body)).estimate.total;
}

/** How long a reservation may stay unsettled: the route's request deadline, else 10 minutes. */
export function leaseOf(route: CompiledRoute): number {
  const upstream = route.action.kind === 'upstream' ? route.action.upstream : undefined;
  const deadline = upstream?.resilience.retry?.deadline;
  // 0 (or none) means no request deadline.
  return deadline !== undefined && deadline > 0 ? deadline : 600_000;
}

function timeoutDetail(timeout: BodyTimeout, ms: number): string {
  return timeout === 'requestBodyIdle'
    ? `no request body data for ${ms} ms (listen.timeouts.requestBodyIdle)`
    : `the request body took longer than ${ms} ms (listen.timeouts.requestBody)`;
}

/**
 * A body cut by a limit leaves the client mid-upload: once the answer is out, end the request.
 * HTTP/1 needs nothing more (the answer says `connection: close` and node closes the socket after
 * it); an HTTP/2 stream would stay half-open, so it is reset.
 */
function endRequestAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMajor !== 2) return;
  if (res.writableFinished || res.destroyed) {
    req.destroy();
    return;
  }
  const end = () => req.destroy();
  res.once('finish', end);
  res.once('close', end);
}

/** The forwarding stage for one listener (its scheme, the gateway's observer and random source). */
export function createForwarder(context: ExchangeContext, proto: 'http' | 'https') {
  /** Stage 5: send the request through an upstream pool and stream the answer back. */
  function forwardToUpstream(
    req: IncomingMessage,
    res: ServerResponse,
    snapshot: Snapshot,
    route: CompiledRoute,
    upstream: CompiledUpstream,
    forwardPath: string,
    scope: RequestScope | undefined,
    isFallback = false,
    prepared?: PreparedForward,
    llm: LlmFacts = NO_LLM,
  ): void {
    const { early, reservation } = llm;
    // No backend can serve (all cooling, breakers open, unhealthy): answer at once, without
    // reading the body or calling anyone — or take the route's fallback. Backends that are only
    // full go on: the request waits in a concurrency queue.
    const now = Date.now();
    const method = req.method ?? 'GET';
    const idempotencyKey = isFallback ? undefined : idempotencyKeyOf(route, method, req);
    // A keyed request may have a stored answer to replay: it goes on even when no backend is ready.
    if (idempotencyKey === undefined && !upstream.backends.some((backend) => isReady(backend, now))) {
      const block = poolBlock(upstream.backends, now);
      const hold = upstream.hold;
      // With hold until ready, a request the soonest cooldown will take within maxWait goes on to be held.
      const holdable =
        block.kind === 'throttled' &&
        hold !== undefined &&
        block.readyAt - now < hold.policy.maxWait &&
        hold.queue.size < hold.policy.queue;
      if (block.kind === 'throttled' && hold !== undefined && !holdable && block.readyAt - now < hold.policy.maxWait)
        context.observer.holdEnded(upstream, 'queue-full', 0);
      if (block.kind !== 'full' && !holdable) {
        reportSkippedCooling(upstream, now, context.observer);
        const sink = prepared?.sink ?? new ServerResponseSink(res);
        const fellBack =
          !isFallback &&
          takeFallback(route, sink, (fallbackUpstream) => {
            forwardToUpstream(req, res, snapshot, route, fallbackUpstream, forwardPath, scope, true, prepared, llm);
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
      if (body.kind === 'too-large' || body.kind === 'timeout' || body.kind === 'aborted') reservation?.refund();
      switch (body.kind) {
        case 'too-large': {
          const detail = `the request body exceeds ${body.limit} bytes`;
          if (prepared) prepared.sink.problem('payload-too-large', detail, { headers: { connection: 'close' } });
          else sendProblem(res, 'payload-too-large', detail, { headers: { connection: 'close' } });
          endRequestAfterAnswer(req, res);
          return;
        }
        case 'timeout':
          sendProblem(res, 'request-timeout', timeoutDetail(body.timeout, body.ms), { headers: { connection: 'close' } });
          endRequestAfterAnswer(req, res);
          return;
        case 'aborted':
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
      if (prepared?.conditional) Object.assign(headers, prepared.conditional);
      const forward: ForwardRequest = {
        method: req.method ?? 'GET',
        path: forwardPath,
        headers,
        body: body.kind === 'none' ? null : body.body,
        replayable: body.kind !== 'stream',
        clientHost: req.headers.host ?? (req.headers[':authority'] as string | undefined),
        scope,
        json: early?.body === body ? early.json : undefined,
        tokenEstimate: tokenEstimateFor(upstream, body, llm),
      };
      let sink: ResponseSink = prepared?.sink ?? new ServerResponseSink(res);
      let exchange: ProxyExchange | undefined;
      if (reservation?.needsAnswer && !prepared?.background) {
        const strip = reservation.estimate !== undefined && askForUsage(forward);
        sink = settlingSink(sink, reservation, early, strip, route, context.observer, forward, () => exchange);
      }
      if (route.responseHeaders) sink = new HeaderRewriteSink(sink, route.responseHeaders);
      const mirror = prepared?.background ? undefined : route.mirror;
      const send = (through: ResponseSink) => {
        const out = mirror ? startMirror(route, mirror, through, forward, context) : through;
        exchange = new ProxyExchange(out, route, upstream, forward, context, isFallback);
        exchange.start();
      };
      if (idempotencyKey !== undefined && route.idempotency !== undefined && body.kind !== 'stream') {
        guardIdempotent({
          req,
          res,
          route,
          upstream,
          idempotency: route.idempotency,
          key: idempotencyKey,
          method: forward.method,
          path: forwardPath,
          body: body.kind === 'buffer' ? body.body : null,
          sink,
          forward: send,
        });
        return;
      }
      send(sink);
    };

    const body =
      prepared?.body ??
      early?.body ??
      (prepared?.background ? ({ kind: 'none' } as const) : readBody(req, res, snapshot, upstream.replayBuffer));
    if (body instanceof Promise) body.then(start, () => res.destroy());
    else start(body);
  }

  /** The client's body under the listener's limits and timeouts (kept for replay up to `replayLimit`). */
  function readBody(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, replayLimit: number) {
    const { requestBodyIdle, requestBody } = snapshot.config.listen.timeouts;
    return readClientBody(req, {
      replayLimit,
      maxBody: snapshot.limits.maxRequestBody,
      idleMs: requestBodyIdle,
      totalMs: requestBody,
      onTimeout: (timeout) => context.observer.clientTimeout(timeout),
      onCut: () => endRequestAfterAnswer(req, res),
    });
  }

  /** Reads the body before routing or limiting (body conditions, token estimates); once. */
  function readEarly(
    req: IncomingMessage,
    res: ServerResponse,
    snapshot: Snapshot,
    replayLimit: number,
    then: (body: ReadBody) => void,
  ): void {
    const body = readBody(req, res, snapshot, replayLimit);
    if (body instanceof Promise)
      body.then(
        (read) => then(new ReadBody(read)),
        () => res.destroy(),
      );
    else then(new ReadBody(body));
  }

  /** A body that cannot be forwarded (too large, too slow, aborted): answered here. True when it was. */
  function answeredBadBody(req: IncomingMessage, res: ServerResponse, body: ClientBody): boolean {
    switch (body.kind) {
      case 'too-large':
        sendProblem(res, 'payload-too-large', `the request body exceeds ${body.limit} bytes`, { headers: { connection: 'close' } });
        endRequestAfterAnswer(req, res);
        return true;
      case 'timeout':
        sendProblem(res, 'request-timeout', timeoutDetail(body.timeout, body.ms), { headers: { connection: 'close' } });
        endRequestAfterAnswer(req, res);
        return true;
      case 'aborted':
        res.destroy();
        return true;
      default:
        return false;
    }
  }

  return { forwardToUpstream, readBody, readEarly, answeredBadBody };
}
