// The proxy listener's server: plain HTTP (default), HTTPS with the configured certificate, or
// HTTP/2 over TLS with HTTP/1.1 still accepted (ALPN). Certificate files were checked at load.

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../config/schema/index.js';

export interface Listener {
  app: FastifyInstance;
  scheme: 'http' | 'https';
  http2: boolean;
}

/** `extra`: fastify options the gateway adds (e.g. frameworkErrors), the same for every kind of server. */
export function createListener(config: GatewayConfig, extra: Pick<FastifyServerOptions, 'frameworkErrors'> = {}): Listener {
  const { listen, limits } = config;
  const base = {
    logger: false,
    routerOptions: { maxParamLength: 8192 },
    // A request that reached us on an open connection while draining is served, not refused.
    return503OnClosing: false,
    ...extra,
  } as const;
  if (!listen.tls) {
    return { app: Fastify({ ...base, http: { maxHeaderSize: limits.maxHeaderSize } }), scheme: 'http', http2: false };
  }
  const tls = { cert: readFileSync(listen.tls.cert), key: readFileSync(listen.tls.key), maxHeaderSize: limits.maxHeaderSize };
  if (listen.http2) {
    const app = untypedFastify({ ...base, http2: true, https: { ...tls, allowHTTP1: true } });
    return { app, scheme: 'https', http2: true };
  }
  const app = untypedFastify({ ...base, https: tls });
  return { app, scheme: 'https', http2: false };
}

/**
 * fastify types HTTPS and HTTP/2 instances apart from HTTP/1 ones; the gateway only uses the
 * request/response surface that node's HTTP/2 compatibility API shares with HTTP/1 (raw req/res,
 * hijack, the server's address and events), so one instance type serves all three.
 */
const untypedFastify = Fastify as unknown as (options: object) => FastifyInstance;
