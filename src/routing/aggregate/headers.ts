// Which client headers a part sees: only an allowlist (by default harmless ones plus tracing
// and auth), never the client's framing, cookies or Accept-Encoding (parts are parsed as JSON).

import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { setForwardedFor } from '../../core/forwarded.js';

export function partRequestHeaders(
  req: IncomingMessage,
  allow: readonly string[],
  proto: 'http' | 'https',
  trustedProxies?: BlockList | undefined,
): Record<string, string | string[]> {
  const source = req.headers;
  const out: Record<string, string | string[]> = { accept: 'application/json' };
  for (const name of allow) {
    const value = source[name];
    if (value !== undefined) out[name] = value;
  }
  setForwardedFor(req, out, trustedProxies);
  out['x-forwarded-proto'] = proto;
  const host = clientHost(req);
  if (host !== undefined) out['x-forwarded-host'] = host;
  return out;
}

/** The Host the client asked for (HTTP/2 sends it as :authority). */
export function clientHost(req: IncomingMessage): string | undefined {
  return req.headers.host ?? (req.headers[':authority'] as string | undefined);
}
