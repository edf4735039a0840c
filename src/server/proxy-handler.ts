// The data-plane request handler: route match → (client limits, later) → upstream exchange.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { matchRoute } from '../routing/route-table.js';
import type { Snapshot } from '../runtime/snapshot.js';
import { ProxyExchange, type ExchangeContext } from '../upstream/exchange.js';
import { isReady, soonestReady } from '../upstream/select.js';
import { readClientBody, type ClientBody } from './client-body.js';
import { buildRequestHeaders } from './forward-headers.js';
import { sendProblem } from './problems.js';

export interface ProxyHandlerOptions {
  getSnapshot: () => Snapshot;
  context: ExchangeContext;
  proto: 'http' | 'https';
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createProxyHandler(options: ProxyHandlerOptions): RequestHandler {
  const { getSnapshot, context, proto } = options;

  return function handleProxyRequest(req, res) {
    const snapshot = getSnapshot();
    const method = req.method ?? 'GET';
    let target = req.url ?? '/';
    if (target.charCodeAt(0) !== 47 /* / */) {
      // absolute-form (RFC 9112 §3.2.2) from clients that treat us as a forward proxy
      try {
        const parsed = new URL(target);
        target = parsed.pathname + parsed.search;
      } catch {
        sendProblem(res, 'bad-request', 'the request target must be a path');
        return;
      }
    }
    const queryAt = target.indexOf('?');
    const path = queryAt === -1 ? target : target.slice(0, queryAt);

    const route = matchRoute(snapshot.routes, method, path);
    if (!route) {
      sendProblem(res, 'route-not-found', `no route matches ${method} ${path}`);
      return;
    }
    const upstream = route.upstream;

    // Every backend cooling: answer at once, without reading the body or calling anyone.
    const now = Date.now();
    if (!upstream.backends.some((backend) => isReady(backend, now))) {
      const waitMs = Math.max(1, Math.ceil(soonestReady(upstream.backends, now) - now));
      context.observer.poolExhausted(route, waitMs);
      sendProblem(res, 'all-backends-throttled', `every backend of upstream "${upstream.name}" is cooling down`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))), 'retry-after-ms': String(waitMs) },
        extensions: { upstream: upstream.name, retryAfterMs: waitMs },
      });
      return;
    }

    const forwardPath = route.rewrite ? route.rewrite(path) + (queryAt === -1 ? '' : target.slice(queryAt)) : target;
    const start = (body: ClientBody) => {
      switch (body.kind) {
        case 'too-large':
          sendProblem(res, 'payload-too-large', `the request body exceeds ${body.limit} bytes`, { headers: { connection: 'close' } });
          return;
        case 'aborted':
          res.destroy();
          return;
      }
      const replayable = body.kind !== 'stream';
      const headers = buildRequestHeaders(req, { host: undefined, proto, dropContentLength: body.kind === 'buffer' });
      if (body.kind === 'stream' && body.length === undefined) delete headers['content-length'];
      const exchange = new ProxyExchange(req, res, route, upstream, {
        method,
        path: forwardPath,
        headers,
        body: body.kind === 'none' ? null : body.body,
        replayable,
        clientHost: req.headers.host,
      }, context);
      exchange.start();
    };

    const body = readClientBody(req, upstream.replayBuffer, snapshot.limits.maxRequestBody);
    if (body instanceof Promise) body.then(start, () => res.destroy());
    else start(body);
  };
}
