// The RFC 9111 decisions of a shared cache, on top of http-cache-semantics (which implements
// storability, freshness, Age, Vary matching, revalidation and stale-while-revalidate for shared
// caches; docs/decisions/0007-http-cache-semantics.md). What this file adds is spillway's own
// rules around it:
//   - only the request headers the answer varies on (and whether Authorization was there) are
//     kept with an entry — never credentials or cookies;
//   - an answer with Set-Cookie is stored only when it says `public` or `s-maxage`, and the
//     stored copy never carries the cookie (it was for one client);
//   - no heuristic freshness: an answer without max-age, s-maxage or Expires is fresh for the
//     route's defaultTtl when the route sets one, otherwise it is only reused after revalidation;
//   - stale-if-error comes from the answer's Cache-Control or the route's staleIfError, and is
//     never used when the answer forbids serving it stale (must-revalidate, proxy-revalidate,
//     no-cache).

import type { IncomingHttpHeaders } from 'node:http';
import CachePolicy from 'http-cache-semantics';

export type LibHeaders = Record<string, string>;

/** Directives of a Cache-Control value: name → argument ("" when it has none). */
export function parseCacheControl(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!value) return out;
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (!name) continue;
    out.set(
      name,
      eq === -1
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1'),
    );
  }
  return out;
}

function seconds(value: string | undefined): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** Node's headers as the policy reads them: one string per name (lists joined). */
export function libHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): LibHeaders {
  const out: LibHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* : */) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** The request as an entry remembers it: target, host, its own cache directives, Vary inputs, and Authorization's presence. */
export function policyRequest(method: string, url: string, headers: IncomingHttpHeaders, vary: readonly string[]): CachePolicy.Request {
  const kept: LibHeaders = {};
  const host = headers.host ?? (headers[':authority'] as string | undefined);
  if (host !== undefined) kept.host = host;
  for (const name of ['cache-control', 'pragma', ...vary]) {
    const value = headers[name];
    if (value !== undefined) kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (headers.authorization !== undefined) kept.authorization = 'present';
  return { method: method === 'HEAD' ? 'GET' : method, url, headers: kept };
}

/** Header names of a Vary value, lower-case; ["*"] when it varies on everything. */
export function varyNames(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name.length > 0);
}

export interface StoreOptions {
  defaultTtlMs: number | undefined;
  staleIfErrorMs: number;
}

export type StoreDecision =
  | { readonly store: true; readonly policy: CachePolicy; readonly retainMs: number; readonly vary: readonly string[] }
  | { readonly store: false; readonly reason: string };

/** Statuses the route's defaultTtl applies to (errors and redirects that may change keep their own rules). */
const DEFAULT_TTL_STATUSES = new Set([200, 203, 204, 301, 308]);

/** How long an entry that can only be revalidated (no freshness, but a validator) is kept. */
const VALIDATOR_RETENTION_MS = 10 * 60 * 1000;

/** Whether (and for how long) an answer to `request` may be stored by a shared cache. */
export function decideStore(
  method: string,
  url: string,
  requestHeaders: IncomingHttpHeaders,
  status: number,
  responseHeaders: LibHeaders,
  options: StoreOptions,
): StoreDecision {
  const cc = parseCacheControl(responseHeaders['cache-control']);
  const vary = varyNames(responseHeaders.vary);
  if (vary.includes('*')) return { store: false, reason: 'vary-star' };
  if (status === 206 || status === 304) return { store: false, reason: 'status' };
  const headers = { ...responseHeaders };
  if (headers['set-cookie'] !== undefined) {
    if (!cc.has('public') && !cc.has('s-maxage')) return { store: false, reason: 'set-cookie' };
    delete headers['set-cookie'];
  }
  const explicit = cc.has('s-maxage') || cc.has('max-age') || headers.expires !== undefined;
  if (
    !explicit &&
    options.defaultTtlMs !== undefined &&
    DEFAULT_TTL_STATUSES.has(status) &&
    !cc.has('no-cache') &&
    !cc.has('no-store') &&
    !cc.has('private')
  ) {
    const ttl = Math.max(1, Math.round(options.defaultTtlMs / 1000));
    headers['cache-control'] = headers['cache-control'] ? `${headers['cache-control']}, s-maxage=${ttl}` : `s-maxage=${ttl}`;
  }
  const request = policyRequest(method, url, requestHeaders, vary);
  const policy = new CachePolicy(request, { status, headers }, { shared: true, cacheHeuristic: 0 });
  if (!policy.storable()) return { store: false, reason: storeRefusal(method, status, cc, requestHeaders) };
  const retainMs = retentionMs(policy, options.staleIfErrorMs);
  if (retainMs <= 0) return { store: false, reason: 'no-freshness' };
  return { store: true, policy, retainMs, vary };
}

/** How long a store keeps an entry: its freshness plus the longest stale window, at least a while when it can be revalidated. */
export function retentionMs(policy: CachePolicy, routeStaleIfErrorMs: number): number {
  const headers = policy.responseHeaders();
  const cc = parseCacheControl(headers['cache-control']);
  const fresh = (policy.maxAge() - policy.age()) * 1000;
  const staleWindow = staleIfErrorWindowMs(cc, routeStaleIfErrorMs);
  const hasValidator = headers.etag !== undefined || headers['last-modified'] !== undefined;
  return Math.round(Math.max(policy.timeToLive(), fresh + staleWindow, hasValidator ? VALIDATOR_RETENTION_MS : 0));
}

function storeRefusal(method: string, status: number, cc: Map<string, string>, requestHeaders: IncomingHttpHeaders): string {
  if (cc.has('no-store') || parseCacheControl(requestHeaders['cache-control']).has('no-store')) return 'no-store';
  if (cc.has('private')) return 'private';
  if (requestHeaders.authorization !== undefined) return 'authorization';
  if (method === 'POST') return 'no-freshness';
  return status >= 200 && status < 600 ? 'status' : 'not-storable';
}

/** stale-if-error in ms: the answer's own directive or the route's setting, whichever is longer; 0 when the answer forbids stale use. */
export function staleIfErrorWindowMs(cc: Map<string, string>, routeMs: number): number {
  if (cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('no-cache')) return 0;
  return Math.max(seconds(cc.get('stale-if-error')) * 1000, routeMs);
}

export type Lookup =
  /** Fresh: answer from the cache. */
  | { readonly kind: 'fresh'; readonly headers: LibHeaders }
  /** Stale within stale-while-revalidate: answer from the cache and refresh in the background. */
  | { readonly kind: 'stale-while-revalidate'; readonly headers: LibHeaders; readonly revalidate: LibHeaders }
  /** Must go to the backend; `revalidate` are the request headers to send (with If-None-Match / If-Modified-Since when the entry has validators). */
  | { readonly kind: 'revalidate'; readonly revalidate: LibHeaders };

/** What a stored entry can do for this request. */
export function evaluate(policy: CachePolicy, request: CachePolicy.Request): Lookup {
  const result = policy.evaluateRequest(request);
  if (result.response && !result.revalidation) return { kind: 'fresh', headers: result.response.headers };
  if (result.response && result.revalidation && !result.revalidation.synchronous)
    return { kind: 'stale-while-revalidate', headers: result.response.headers, revalidate: result.revalidation.headers };
  // http-cache-semantics revalidates must-revalidate answers even while fresh; RFC 9111
  // §5.2.2.2 only asks that once they are stale.
  const headers = policy.responseHeaders();
  const cc = parseCacheControl(headers['cache-control']);
  const requestCc = parseCacheControl(request.headers['cache-control']);
  if (cc.has('must-revalidate') && !cc.has('no-cache') && !policy.stale() && !requestCc.has('no-cache') && !requestCc.has('max-age'))
    return { kind: 'fresh', headers };
  return { kind: 'revalidate', revalidate: result.revalidation?.headers ?? policy.revalidationHeaders(request) };
}

/** May this entry stand in for a failed answer now? */
export function staleIfErrorAllowed(policy: CachePolicy, routeMs: number): boolean {
  const cc = parseCacheControl(policy.responseHeaders()['cache-control']);
  const window = staleIfErrorWindowMs(cc, routeMs);
  if (window <= 0) return false;
  return (policy.age() - policy.maxAge()) * 1000 < window;
}

/** Seconds of freshness left (negative once stale), for Cache-Status ttl. */
export function ttlSeconds(policy: CachePolicy): number {
  return policy.maxAge() - policy.age();
}
