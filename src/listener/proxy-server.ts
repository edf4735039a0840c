// The proxy listener's server: every path of every method handed to the proxy handler (HTTP/1
// straight through fastify's serverFactory, HTTP/2 through its router), WebSocket upgrades beside
// it, problem+json for framing errors, slow clients and defects, 413 before `100 Continue`, and
// the HTTP/2 session guard (rapid reset, idle close).

import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema/index.js';
import { sendProblem } from '../core/problems.js';
import { declaredLength } from '../pipeline/client-body.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import { createClientErrorHandler } from './client-errors.js';
import { guardHttp2Sessions, type Http2Sessions } from './http2-guard.js';
import { createListener } from './listener.js';

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'] as const;

export interface ProxyServerParts {
  /** The instrumented proxy handler. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The WebSocket upgrade handler. */
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The running snapshot's body limit (a reload may change it). */
  maxRequestBody: () => number;
  getObserver: () => ProxyObserver;
  logger: Logger;
}

export interface ProxyServer {
  app: FastifyInstance;
  scheme: 'http' | 'https';
  /** The HTTP/2 session guard, when the listener speaks HTTP/2. */
  http2Sessions: Http2Sessions | undefined;
}

export function createProxyServer(config: GatewayConfig, parts: ProxyServerParts): ProxyServer {
  const { handler, upgrade, maxRequestBody, getObserver, logger } = parts;
  // A request the handler throws on (a defect) gets a problem+json 500, never a crash.
  const answerDefect = (error: unknown, method: string | undefined, res: ServerResponse) => {
    logger.error({ err: error, method }, 'request failed inside the gateway');
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
      clientErrorHandler: createClientErrorHandler(getObserver),
      // HTTP/2 listeners route through fastify: a URL its router cannot decode (e.g. "%zz")
      // goes to the proxy handler too, whose path normalisation answers it with a problem+json 400.
      frameworkErrors: (_error, request, reply) => {
        reply.hijack();
        handler(request.raw, reply.raw);
      },
    },
    direct,
  );
  const app = listener.app;
  // Expect: 100-continue: a body declared too large is refused before the client sends it.
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const limit = maxRequestBody();
    const declared = declaredLength(req);
    if (declared !== undefined && declared > limit) {
      sendProblem(res, 'payload-too-large', `the request body exceeds ${limit} bytes`, { headers: { connection: 'close' } });
      return;
    }
    res.writeContinue();
    app.server.emit('request', req, res);
  });
  const http2Sessions = listener.http2
    ? guardHttp2Sessions(app.server as unknown as Http2SecureServer, {
        limits: config.listen.http2Limits,
        keepAliveIdleMs: config.listen.timeouts.keepAliveIdle,
        getObserver,
      })
    : undefined;
  // HTTP/2 streams start one turn later: a stream the client reset in the same read (rapid
  // reset) is gone by then and never reaches a backend.
  const routed = (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor !== 2) {
      handler(req, res);
      return;
    }
    setImmediate(() => {
      if (streamGone(res)) getObserver().clientProtocolError('http2-reset-before-start');
      else handler(req, res);
    });
  };
  // WebSocket upgrades arrive beside fastify's routing, on the HTTP/1.1 server's 'upgrade' event.
  app.server.on('upgrade', upgrade);
  // Bodies are never parsed: the proxy handler streams or buffers them itself.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  app.route({
    method: [...ALL_METHODS],
    url: '/*',
    handler: (request, reply) => {
      reply.hijack();
      routed(request.raw, reply.raw);
    },
  });
  app.setNotFoundHandler((request, reply) => {
    reply.hijack();
    routed(request.raw, reply.raw);
  });
  app.setErrorHandler((error, request, reply) => {
    reply.hijack();
    answerDefect(error, request.method, reply.raw);
  });
  return { app, scheme: listener.scheme, http2Sessions };
}

/** True when an HTTP/2 response's stream is closed (reset by the client, or its connection gone). */
function streamGone(res: ServerResponse): boolean {
  const stream = (res as ServerResponse & { stream?: { destroyed: boolean; closed: boolean } }).stream;
  return stream === undefined || stream.destroyed || stream.closed;
}
