// Header handling at the proxy boundary: hop-by-hop headers (RFC 9110 §7.6.1) and every
// Proxy-* header never cross it; X-Forwarded-*, X-Real-IP describe the client to the backend,
// believed from trusted proxies only (core/forwarded.ts).

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { setForwardedFor } from '../core/forwarded.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Proxy-Authorization, Proxy-Connection and any other Proxy-* header are for the proxy alone. */
function isProxyHeader(name: string): boolean {
  return name.length > 6 && name.charCodeAt(5) === 45 /* - */ && name.startsWith('proxy-');
}

/** Header names listed in Connection are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (!value || value === 'keep-alive' || value === 'close') return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const tokens = new Set<string>();
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive') tokens.add(name);
  }
  return tokens.size > 0 ? tokens : undefined;
}

export interface RequestHeaderOptions {
  /** Value for Host; undefined keeps the client's. */
  host: string | undefined;
  proto: 'http' | 'https';
  /** Drop content-length (the body is sent as a buffer whose length undici sets). */
  dropContentLength: boolean;
  /** `listen.trustedProxies`: peers whose X-Forwarded-For, X-Real-IP and Forwarded are kept. */
  trustedProxies?: BlockList | undefined;
}

export function buildRequestHeaders(req: IncomingMessage, options: RequestHeaderOptions): Record<string, string | string[]> {
  const source = req.headers;
  const extraHopByHop = connectionTokens(source.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in source) {
    const value = source[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name === 'host' || name === 'expect' || name.charCodeAt(0) === 58 /* : HTTP/2 pseudo-header */) continue;
    if (isProxyHeader(name)) continue;
    if (name === 'content-length' && options.dropContentLength) continue;
    if (extraHopByHop?.has(name)) continue;
    out[name] = value;
  }
  setForwardedFor(req, out, options.trustedProxies);
  out['x-forwarded-proto'] = options.proto;
  // HTTP/2 clients send :authority instead of Host.
  const clientHost = source.host ?? (source[':authority'] as string | undefined);
  if (clientHost !== undefined) out['x-forwarded-host'] = clientHost;
  const host = options.host ?? clientHost;
  if (host !== undefined) out.host = host;
  return out;
}

/** Copies a backend's response headers for the client, without hop-by-hop ones. */
export function buildResponseHeaders(headers: Record<string, string | string[] | undefined>): IncomingHttpHeaders {
  const extraHopByHop = connectionTokens(headers.connection);
  const out: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || extraHopByHop?.has(name) || isProxyHeader(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
