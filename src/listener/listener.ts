// The proxy listener's server: plain HTTP (default), HTTPS with the configured certificate, or
// HTTP/2 over TLS with HTTP/1.1 still accepted (ALPN). Certificate files were checked at load.
// The client-side limits (listen.timeouts, listen.http2Limits, TLS profile) are set here.

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { GatewayConfig } from '../config/schema/index.js';
import type { ListenTimeouts } from '../config/schema/listen.js';
import { GatewayResponse } from '../exchange/gateway-response.js';

export interface Listener {
  app: FastifyInstance;
  scheme: 'http' | 'https';
  http2: boolean;
}

/** Every data-plane request goes to one handler: the gateway routes by its own compiled table. */
export type DirectHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The timeouts node's HTTP/1 server enforces (also on an HTTP/2 server's HTTP/1.1 connections). */
type Http1Timeouts = Pick<Server, 'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout' | 'timeout'>;

/** Slack for node's whole-request backstop: the body timers of the proxy handler answer first. */
const BACKSTOP_SLACK_MS = 1_000;

function applyHttp1Timeouts(server: Http1Timeouts, timeouts: ListenTimeouts): void {
  server.headersTimeout = timeouts.requestHeaders;
  // Node's requestTimeout covers headers and body together; it also ends bodies nobody reads
  // (a request answered without reading its upload).
  server.requestTimeout = timeouts.requestHeaders + timeouts.requestBody + BACKSTOP_SLACK_MS;
  server.keepAliveTimeout = timeouts.keepAliveIdle;
  // No socket inactivity timeout: it would cut a quiet streaming response (SSE).
  server.timeout = 0;
}

/** How often node checks headersTimeout/requestTimeout: fine enough for the shortest one. */
function checkingInterval(timeouts: ListenTimeouts): number {
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(timeouts.requestHeaders, timeouts.requestBody) / 4)));
}

/**
 * `extra`: fastify options the gateway adds (frameworkErrors, clientErrorHandler), the same for every kind of server.
 * `direct`: HTTP/1 listeners (plain or TLS) hand every request straight to it — no fastify
 * request/reply objects, router or hooks on the hot path; fastify still owns listen and close.
 * HTTP/2 listeners route through fastify.
 */
export function createListener(
  config: GatewayConfig,
  extra: Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> = {},
  direct?: DirectHandler,
): Listener {
  const { listen, limits } = config;
  const { timeouts } = listen;
  const base = {
    logger: false,
    routerOptions: { maxParamLength: 8192 },
    // A request that reached us on an open connection while draining is served, not refused.
    return503OnClosing: false,
    ...extra,
  } as const;
  const connectionsCheckingInterval = checkingInterval(timeouts);
  const tls = listen.tls
    ? {
        cert: readFileSync(listen.tls.cert),
        key: readFileSync(listen.tls.key),
        maxHeaderSize: limits.maxHeaderSize,
        minVersion: listen.tls.minVersion,
        ciphers: listen.tls.ciphers,
        // Mozilla "intermediate": the client picks among suites that are all good.
        honorCipherOrder: false,
        handshakeTimeout: timeouts.requestHeaders,
      }
    : undefined;
  if (tls && listen.http2) {
    const { maxConcurrentStreams, maxResetsPerSecond } = listen.http2Limits;
    const maxHeaderListSize = listen.http2Limits.maxHeaderListSize ?? limits.maxHeaderSize;
    const app = untypedFastify({
      ...base,
      http2: true,
      // Sessions are closed by the gateway's own idle rule (http2-guard.ts), which spares open streams.
      http2SessionTimeout: 0,
      https: {
        ...tls,
        allowHTTP1: true,
        settings: { maxConcurrentStreams, maxHeaderListSize },
        maxHeaderListPairs: 256,
        // nghttp2 own brake (a token bucket) for a flood inside one read, above the count of http2-guard.ts.
        streamResetBurst: maxResetsPerSecond,
        streamResetRate: maxResetsPerSecond,
        connectionsCheckingInterval,
      },
    });
    applyHttp1Timeouts(app.server as unknown as Http1Timeouts, timeouts);
    return { app, scheme: 'https', http2: true };
  }
  const serverFactory = direct
    ? () => {
        const options = { maxHeaderSize: limits.maxHeaderSize, ServerResponse: GatewayResponse, connectionsCheckingInterval };
        const server = tls ? createHttpsServer({ ...tls, ...options }, direct) : createHttpServer(options, direct);
        applyHttp1Timeouts(server, timeouts);
        return server;
      }
    : undefined;
  const app = tls
    ? untypedFastify({ ...base, https: tls, ...(serverFactory ? { serverFactory } : {}) })
    : untypedFastify({ ...base, http: { maxHeaderSize: limits.maxHeaderSize }, ...(serverFactory ? { serverFactory } : {}) });
  applyHttp1Timeouts(app.server as unknown as Http1Timeouts, timeouts);
  return { app, scheme: tls ? 'https' : 'http', http2: false };
}

/**
 * fastify types HTTPS and HTTP/2 instances apart from HTTP/1 ones; the gateway only uses the
 * request/response surface that node's HTTP/2 compatibility API shares with HTTP/1 (raw req/res,
 * hijack, the server's address and events), so one instance type serves all three.
 */
const untypedFastify = Fastify as unknown as (options: object) => FastifyInstance;
