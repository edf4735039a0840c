// The headers that tell a backend who the client is. They are believed only from a trusted
// proxy (`listen.trustedProxies`): from any other peer, X-Forwarded-For and X-Real-IP are
// replaced by the peer's address and Forwarded (RFC 7239) is dropped, so a client cannot pose
// as another address to a backend that trusts these headers.

import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { isTrusted, normalizeIp } from './client-ip.js';

/** Sets x-forwarded-for and x-real-ip on `out` and removes what an untrusted peer sent. */
export function setForwardedFor(req: IncomingMessage, out: Record<string, string | string[]>, trusted: BlockList | undefined): void {
  const peer = req.socket.remoteAddress ?? '';
  const fromTrusted = trusted !== undefined && isTrusted(trusted, normalizeIp(peer));
  if (!fromTrusted) {
    out['x-forwarded-for'] = peer;
    out['x-real-ip'] = peer;
    delete out.forwarded;
    return;
  }
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}` : peer;
  // A trusted proxy's X-Real-IP and Forwarded pass as sent; without one, the peer is the client.
  if (req.headers['x-real-ip'] === undefined) out['x-real-ip'] = peer;
}
