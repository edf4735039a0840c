// TLS to a backend: which CA to trust, whether to verify, and the SNI name. Upstream-level
// settings apply to every https backend; a backend's own `tls` overrides them field by field.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { UpstreamTlsConfig } from '../config/schema/tls.js';

export interface BackendTls {
  /** PEM text of the trusted CA(s); undefined = the system store. */
  readonly ca: string | undefined;
  readonly caFile: string | undefined;
  readonly rejectUnauthorized: boolean;
  /** SNI name and the name the certificate must carry; undefined for IP-address backends without one. */
  readonly servername: string | undefined;
}

/** undefined for plain http backends. Reads the CA file (checked at config load; re-read on reload). */
export function resolveBackendTls(
  url: URL,
  upstream: UpstreamTlsConfig | undefined,
  backend: UpstreamTlsConfig | undefined,
): BackendTls | undefined {
  if (url.protocol !== 'https:') return undefined;
  const caFile = backend?.ca ?? upstream?.ca;
  const insecure = backend?.insecureSkipVerify ?? upstream?.insecureSkipVerify ?? false;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const servername = backend?.servername ?? upstream?.servername ?? (isIP(hostname) ? undefined : hostname);
  return {
    ca: caFile ? readFileSync(caFile, 'utf8') : undefined,
    caFile,
    rejectUnauthorized: !insecure,
    servername,
  };
}

/** Part of a pool key: backends with the same origin and TLS settings share one pool. */
export function tlsKey(tls: BackendTls | undefined): string {
  if (!tls) return '';
  // The CA's content, not its path: a reload after the CA file changed gets a fresh pool.
  const ca = tls.ca ? createHash('sha256').update(tls.ca).digest('hex').slice(0, 16) : '-';
  return `${ca}|${tls.rejectUnauthorized ? 'verify' : 'insecure'}`;
}
