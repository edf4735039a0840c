// The cache key: what makes two requests "the same" for a shared cache. It holds the method
// (HEAD reads GET's entries), the host the client asked for, the normalised path and query, the
// headers the route's `keyBy` names and, for LLM routes, a hash of the normalised JSON body.
// Nothing else of the request is in it: a header outside the key can never select an entry,
// and answers to requests carrying known unkeyed forwarding headers are not stored
// (see unkeyedInput) so they cannot be poisoned either.
// The readable path + query leads the key so purges by path prefix need no index.

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Longest path + query the cache keys; longer requests bypass it. */
export const MAX_KEYED_TARGET = 2048;

export interface KeyRequest {
  route: string;
  method: string;
  host: string | undefined;
  /** Normalised path (routing/normalise.ts). */
  path: string;
  /** "" or "?..." as sent. */
  query: string;
  headers: IncomingHttpHeaders;
  /** keyBy entries (header names, lower-case, or "body"). */
  keyBy: readonly string[];
  /** The hash of the normalised body when keyBy holds "body". */
  bodyHash?: string | undefined;
}

export interface CacheKey {
  /** The entry's key (before Vary). */
  readonly primary: string;
  /** Path + query, normalised: what purges by prefix match. */
  readonly target: string;
}

/** Query parameters in a stable order (by name; repeated names keep their order); empty ones dropped. */
export function normaliseQuery(query: string): string {
  if (query.length <= 1) return '';
  const parts = query
    .slice(1)
    .split('&')
    .filter((part) => part.length > 0);
  if (parts.length <= 1) return parts.length === 1 ? `?${parts[0]}` : '';
  const named = parts.map((part, index) => {
    const eq = part.indexOf('=');
    return { name: eq === -1 ? part : part.slice(0, eq), part, index };
  });
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index));
  return `?${named.map((entry) => entry.part).join('&')}`;
}

function headerText(value: string | string[] | undefined): string {
  if (value === undefined) return '\u0002';
  return Array.isArray(value) ? value.join(', ') : value;
}

/** undefined when the request cannot be keyed (target too long). */
export function cacheKey(request: KeyRequest): CacheKey | undefined {
  const target = request.path + normaliseQuery(request.query);
  if (target.length > MAX_KEYED_TARGET) return undefined;
  const hash = createHash('sha256');
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  hash.update(`${request.route}\u0000${method}\u0000${(request.host ?? '').toLowerCase()}\u0000`);
  for (const part of request.keyBy) {
    if (part === 'body') hash.update(`body=${request.bodyHash ?? ''}\u0000`);
    else hash.update(`${part}=${headerText(request.headers[part])}\u0000`);
  }
  return { primary: `${target}\u0000${hash.digest('base64url').slice(0, 27)}`, target };
}

/** The key of one variant of an entry whose answer named `vary` headers. */
export function variantKey(primary: string, vary: readonly string[], headers: IncomingHttpHeaders): string {
  const hash = createHash('sha256');
  for (const name of vary) hash.update(`${name}=${headerText(headers[name])}\u0000`);
  return `${primary}\u0001${hash.digest('base64url').slice(0, 27)}`;
}

/**
 * Request headers that some backends and frameworks read to build links, redirects or hosts in
 * their answers, yet which are not part of the key. An answer to a request carrying one of them
 * is passed on but never stored, unless the route keys by that header. (X-Forwarded-Host and
 * X-Forwarded-Proto are set by the gateway itself from the request it received.)
 */
const UNKEYED_INPUTS = [
  'x-forwarded-host',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-prefix',
  'x-forwarded-port',
  'x-host',
  'x-original-url',
  'x-original-host',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'forwarded',
] as const;

/** The first unkeyed forwarding header the client sent, if any. */
export function unkeyedInput(headers: IncomingHttpHeaders, keyBy: readonly string[]): string | undefined {
  for (const name of UNKEYED_INPUTS) {
    if (headers[name] !== undefined && !keyBy.includes(name)) return name;
  }
  return undefined;
}
