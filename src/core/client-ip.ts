// The client address (rate-limit `ip` keys, `stickyBy: ip`, forwarded headers). X-Forwarded-For
// is believed only hop by hop from trusted proxies (`listen.trustedProxies`, or a policy's own): walking the list from the right (the entry our peer appended), every address that is
// itself a trusted proxy is skipped; the first untrusted one is the client. A client that sends
// its own X-Forwarded-For directly (an untrusted peer) is keyed by its socket address.

import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

export type ClientIpResolver = (req: IncomingMessage) => string;

export function normalizeIp(address: string): string {
  let value = address.trim();
  if (value.startsWith('[')) value = value.slice(1, value.indexOf(']') === -1 ? undefined : value.indexOf(']'));
  if (value.startsWith('::ffff:') && isIP(value.slice(7)) === 4) value = value.slice(7);
  // "1.2.3.4:5678" (some proxies append the port)
  if (isIP(value) === 0 && /^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
  return value.toLowerCase();
}

export function trustedProxyList(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of cidrs) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const ip = normalizeIp(address);
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(bits), family);
  }
  return list;
}

export function isTrusted(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

export function clientIpResolver(trustedProxies: readonly string[]): ClientIpResolver {
  const trusted = trustedProxyList(trustedProxies);
  if (!trusted) return (req) => normalizeIp(req.socket.remoteAddress ?? '');
  return (req) => {
    let current = normalizeIp(req.socket.remoteAddress ?? '');
    if (!isTrusted(trusted, current)) return current;
    const header = req.headers['x-forwarded-for'];
    if (!header) return current;
    const hops = (Array.isArray(header) ? header.join(',') : header).split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(hops[i]!);
      if (isIP(hop) === 0) return current; // garbage: the last trusted hop is all we know
      current = hop;
      if (!isTrusted(trusted, hop)) return hop;
    }
    return current;
  };
}
