// `spillway check` (and the start-up log) warn where a config written before the listener's
// client-side limits existed now behaves differently: only for fields the file leaves unset.

import type { GatewayConfig } from './schema/index.js';

export interface ListenerWarning {
  path: PropertyKey[];
  message: string;
}

type Raw = Record<string, unknown> | undefined;

const field = (object: Raw, key: string): Raw =>
  object && typeof object[key] === 'object' && object[key] !== null ? (object[key] as Record<string, unknown>) : undefined;

const MIB = 1024 * 1024;

export function listenerWarnings(raw: unknown, config: GatewayConfig): ListenerWarning[] {
  const warnings: ListenerWarning[] = [];
  const listen = field(raw as Raw, 'listen');
  const tls = field(listen, 'tls');
  if (config.listen.tls && tls && tls.minVersion === undefined && tls.ciphers === undefined) {
    warnings.push({
      path: ['listen', 'tls'],
      message:
        'TLS now follows Mozilla\'s "intermediate" profile: TLS 1.2 or later with forward-secret AEAD suites; clients that only offer TLS 1.0/1.1 or CBC/SHA-1 suites are refused (listen.tls.minVersion / listen.tls.ciphers change this)',
    });
  }
  if (config.listen.http2 && listen?.http2Limits === undefined) {
    warnings.push({
      path: ['listen', 'http2'],
      message:
        'HTTP/2 clients now get at most 100 concurrent streams per connection, and a connection that cancels more than 100 streams in a second is closed with GOAWAY (listen.http2Limits)',
    });
  }
  const timeouts = field(listen, 'timeouts');
  const { requestBody } = config.listen.timeouts;
  const rate = config.limits.maxRequestBody / (requestBody / 1000);
  if (timeouts?.requestBody === undefined && rate > MIB) {
    warnings.push({
      path: ['limits', 'maxRequestBody'],
      message: `a body of limits.maxRequestBody must now arrive within listen.timeouts.requestBody (${requestBody / 1000}s), at ${(rate / MIB).toFixed(1)} MiB/s or more; raise listen.timeouts.requestBody for slow clients`,
    });
  }
  return warnings;
}
