// The proxy listener's server: plain HTTP (default), HTTPS with the configured certificate, or
// HTTP/2 over TLS with HTTP/1.1 still accepted (ALPN). Certificate files were checked at load.

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { GatewayConfig } from '../config/schema/index.js';
import { GatewayResponse } from '../exchange/gateway-response.js';

export interface Listener {
  app: FastifyInstance;
  scheme: 'http' | 'https';
  http2: boolean;
}

/** Every data-plane request goes to one handler: the gateway routes by its own compiled table. */
export type DirectHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The server options fastify applies to the HTTP/1 servers it makes itself. */
interface ServerTimeouts {
  keepAliveTimeout: number;
  requestTimeout: number;
  connectionTimeout: number;
}

/**
 * `extra`: fastify options the gateway adds (e.g. frameworkErrors), the same for every kind of server.
 * `direct`: HTTP/1 listeners (plain or TLS) hand every request straight to it — no fastify
 * request/reply objects, router or hooks on the hot path; fastify still owns listen, close,
 * timeouts and the 400 answer to unparsable requests. HTTP/2 listeners route through fastify.
 */
export function createListener(
  config: GatewayConfig,
  extra: Pick<FastifyServerOptions, 'frameworkErrors'> = {},
  direct?: DirectHandler,
): Listener {
  const { listen, limits } = config;
  const base = {
    logger: false,
    routerOptions: { maxParamLength: 8192 },
    // A request that reached us on an open connection while draining is served, not refused.
    return503OnClosing: false,
    ...extra,
  } as const;
  const tls = listen.tls
    ? { cert: readFileSync(listen.tls.cert), key: readFileSync(listen.tls.key), maxHeaderSize: limits.maxHeaderSize }
    : undefined;
  if (tls && listen.http2) {
    const app = untypedFastify({ ...base, http2: true, https: { ...tls, allowHTTP1: true } });
    return { app, scheme: 'https', http2: true };
  }
  const serverFactory = direct
    ? (_fastifyHandler: unknown, options: ServerTimeouts) => {
        const server = tls
          ? createHttpsServer({ ...tls, ServerResponse: GatewayResponse }, direct)
          : createHttpServer({ maxHeaderSize: limits.maxHeaderSize, ServerResponse: GatewayResponse }, direct);
        server.keepAliveTimeout = options.keepAliveTimeout;
        server.requestTimeout = options.requestTimeout;
        server.setTimeout(options.connectionTimeout);
        return server;
      }
    : undefined;
  if (!tls) {
    return {
      app: untypedFastify({ ...base, http: { maxHeaderSize: limits.maxHeaderSize }, ...(serverFactory ? { serverFactory } : {}) }),
      scheme: 'http',
      http2: false,
    };
  }
  const app = untypedFastify({ ...base, https: tls, ...(serverFactory ? { serverFactory } : {}) });
  return { app, scheme: 'https', http2: false };
}

/**
 * fastify types HTTPS and HTTP/2 instances apart from HTTP/1 ones; the gateway only uses the
 * request/response surface that node's HTTP/2 compatibility API shares with HTTP/1 (raw req/res,
 * hijack, the server's address and events), so one instance type serves all three.
 */
const untypedFastify = Fastify as unknown as (options: object) => FastifyInstance;
