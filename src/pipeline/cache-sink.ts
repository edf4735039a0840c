// The cache's side of one forwarded request: a sink between the exchange and the client that
//   - stores the answer when RFC 9111 allows it (recording the body up to maxBody), then hands
//     the entry to the identical requests that waited for it (collapsed forwarding);
//   - turns a 304 to its conditional request into the stored answer, refreshed;
//   - serves the stored answer instead of an error when stale-if-error allows it: a backend's
//     5xx or 429, a failed exchange (502/504 problems), or the pool-blocked answers (every
//     backend cooling: 429; breakers open: 503) — the client gets the stale answer with Age and
//     a Cache-Status that says why;
//   - adds Cache-Status to whatever it passes on.

import type { IncomingHttpHeaders } from 'node:http';
import { formatCacheStatus, type CacheStatusParts, type Forward } from '../cache/cache-status.js';
import type { CacheEntry } from '../cache/entry.js';
import {
  decideStore,
  libHeaders,
  policyRequest,
  retentionMs,
  staleIfErrorAllowed,
  ttlSeconds,
  varyNames,
  type LibHeaders,
  type StoreDecision,
} from '../cache/freshness.js';
import type CachePolicy from 'http-cache-semantics';
import { PROBLEM_TYPES, type ProblemCode } from '../core/problems.js';
import type { CacheResult } from '../core/events.js';
import { DelegatingSink } from '../exchange/delegating-sink.js';
import type { ProblemOptions, ResponseSink } from '../exchange/sink.js';
import type { CompiledCache, CompiledRoute } from '../snapshot/snapshot.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { Flight } from '../state/cache-registry.js';

/** Statuses a stored answer may stand in for (RFC 5861's errors, and throttling). */
function isErrorStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

export interface CacheExchange {
  readonly route: CompiledRoute;
  readonly cache: CompiledCache;
  readonly observer: ProxyObserver;
  readonly method: string;
  /** The request as the policy reads it (target, all headers flattened). */
  readonly policyRequest: CachePolicy.Request;
  readonly requestHeaders: IncomingHttpHeaders;
  /** Where the entry goes: the primary key, or the variant key once the answer's Vary is known. */
  readonly storeKey: (vary: readonly string[]) => { key: string; marker: boolean };
  /** The flight this request leads (collapsed forwarding), if it leads. */
  readonly leads: Flight | undefined;
  readonly target: string;
  /** The entry found for this request, stale or not reusable without the backend. */
  readonly stored: CacheEntry | undefined;
  /** Why it went to the backend (Cache-Status fwd). */
  readonly fwd: Forward;
  /** False: pass the answer on without storing it (HEAD, unkeyed forwarding headers, ...). */
  readonly mayStore: boolean;
  /** Extra Cache-Status detail for a pass-through (e.g. the unkeyed header seen). */
  readonly detail?: string | undefined;
  readonly collapsed?: boolean;
  /** A background refresh: no client, not counted as a request. */
  readonly background?: boolean;
}

type Mode = 'pass' | 'record' | 'swallow';

export class CacheSink extends DelegatingSink {
  #mode: Mode = 'pass';
  #chunks: Buffer[] = [];
  #size = 0;
  #status = 0;
  #policy: CachePolicy | undefined;
  #retainMs = 0;
  #vary: readonly string[] = [];
  #headers: LibHeaders | undefined;
  /** What to serve once the swallowed answer ends. */
  #replacement: { entry: CacheEntry; parts: CacheStatusParts; result: CacheResult } | undefined;
  #released = false;
  /** The route's fallback answers: passed on, never stored as the upstream's answer. */
  #fallback = false;

  constructor(
    inner: ResponseSink,
    readonly x: CacheExchange,
  ) {
    super(inner);
    inner.onGone(() => this.#release(undefined));
  }

  override start(status: number, headers: IncomingHttpHeaders): void {
    this.#status = status;
    const { x } = this;
    const stored = x.stored;
    if (status === 304 && stored !== undefined) {
      const revalidated = revalidate(stored, x, headers);
      if (revalidated !== undefined) {
        const entry: CacheEntry = { ...stored, policy: revalidated, retainMs: retentionMs(revalidated, x.cache.config.staleIfError ?? 0) };
        // A varying answer keeps living at its variant's key.
        this.#vary = varyNames(revalidated.responseHeaders().vary);
        this.#store(entry);
        this.#replacement = {
          entry,
          parts: { fwd: 'stale', fwdStatus: 304, stored: true, ttl: ttlSeconds(entry.policy) },
          result: 'revalidated',
        };
        this.#mode = 'swallow';
        return;
      }
    }
    if (isErrorStatus(status) && stored !== undefined && staleIfErrorAllowed(stored.policy, x.cache.config.staleIfError ?? 0)) {
      this.#replacement = { entry: stored, parts: staleParts(stored, status), result: 'stale' };
      this.#mode = 'swallow';
      return;
    }
    let stores = false;
    if (x.mayStore && !this.#fallback && x.method !== 'HEAD') {
      const flat = libHeaders(headers);
      const decision = decideSafely(x, status, flat);
      const length = Number(flat['content-length']);
      if (decision.store && !(length > x.cache.config.maxBody)) {
        this.#mode = 'record';
        this.#policy = decision.policy;
        this.#retainMs = decision.retainMs;
        this.#vary = decision.vary;
        this.#headers = flat;
        stores = true;
      }
    }
    if (!stores) this.#release(undefined);
    headers['cache-status'] = formatCacheStatus({
      fwd: x.fwd,
      fwdStatus: status,
      stored: stores,
      collapsed: x.collapsed,
      detail: x.detail,
    });
    if (!x.background) x.observer.cacheLookup(x.route, x.fwd === 'bypass' || x.fwd === 'method' ? 'bypass' : 'miss', 0);
    super.start(status, headers);
  }

  override write(chunk: Buffer): boolean {
    if (this.#mode === 'swallow') return true;
    if (this.#mode === 'record') {
      this.#size += chunk.length;
      if (this.#size > this.x.cache.config.maxBody) {
        this.#mode = 'pass';
        this.#chunks = [];
        this.#release(undefined);
      } else {
        this.#chunks.push(Buffer.from(chunk));
      }
    }
    return super.write(chunk);
  }

  override end(): void {
    if (this.#mode === 'swallow') {
      this.#serveReplacement();
      return;
    }
    super.end();
    if (this.#mode !== 'record' || this.#policy === undefined) return;
    const entry: CacheEntry = {
      target: this.x.target,
      policy: this.#policy,
      body: this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size),
      stream: /^text\/event-stream/i.test(this.#headers?.['content-type'] ?? ''),
      retainMs: this.#retainMs,
      staleIfErrorMs: this.x.cache.config.staleIfError ?? 0,
    };
    this.#chunks = [];
    this.#store(entry);
  }

  override problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    const stored = this.x.stored;
    const status = PROBLEM_TYPES[code].status;
    if (stored !== undefined && isErrorStatus(status) && staleIfErrorAllowed(stored.policy, this.x.cache.config.staleIfError ?? 0)) {
      this.#release(undefined);
      this.#replacement = { entry: stored, parts: { ...staleParts(stored, status), detail: `stale-if-error: ${code}` }, result: 'stale' };
      this.#serveReplacement();
      return;
    }
    this.#release(undefined);
    if (!this.x.background) this.x.observer.cacheLookup(this.x.route, 'miss', 0);
    const status_ = formatCacheStatus({ fwd: this.x.fwd, fwdStatus: status, collapsed: this.x.collapsed, detail: this.x.detail });
    super.problem(code, detail, { ...options, headers: { ...options?.headers, 'cache-status': status_ } });
  }

  override fallingBack(): void {
    this.#fallback = true;
    super.fallingBack();
  }

  override abort(error: Error): void {
    this.#release(undefined);
    if (this.#mode === 'swallow' && !this.inner.started) {
      this.#serveReplacement();
      return;
    }
    super.abort(error);
  }

  #serveReplacement(): void {
    const replacement = this.#replacement!;
    this.#release(replacement.result === 'revalidated' ? replacement.entry : undefined);
    const bytes = serveEntry(this.inner, replacement.entry, replacement.entry.policy.responseHeaders(), this.x.method, replacement.parts);
    if (!this.x.background) this.x.observer.cacheLookup(this.x.route, replacement.result, bytes);
  }

  #store(entry: CacheEntry): void {
    const { key, marker } = this.x.storeKey(this.#vary.length > 0 ? this.#vary : []);
    const { store } = this.x.cache;
    const retain = Math.max(entry.retainMs, 1);
    if (marker) store.set(this.x.storeKey([]).key, { target: entry.target, vary: this.#vary, retainMs: retain }, retain);
    store.set(key, entry, retain);
    this.x.observer.cacheStored(this.x.route, entry.body.length);
    this.#release(entry);
  }

  #release(entry: CacheEntry | undefined): void {
    if (this.#released) return;
    this.#released = true;
    if (this.x.leads !== undefined) this.x.cache.locks.release(this.x.leads, entry);
  }

  /** The status the backend (or the gateway) gave, for tests and logs. */
  get forwardedStatus(): number {
    return this.#status;
  }
}

/** The stored entry's policy refreshed by a 304; undefined when the 304 is not about it (the client's own validator). */
function revalidate(stored: CacheEntry, x: CacheExchange, headers: IncomingHttpHeaders): CachePolicy | undefined {
  try {
    // The entry remembers only what it varies on (and whether Authorization was sent): never credentials.
    const vary = varyNames(stored.policy.responseHeaders().vary);
    const request = policyRequest(x.method, x.target, x.requestHeaders, vary);
    const revalidated = stored.policy.revalidatedPolicy(request, { status: 304, headers: libHeaders(headers) });
    return revalidated.modified ? undefined : revalidated.policy;
  } catch {
    return undefined;
  }
}

/** Whether to store; an answer the policy cannot read (a defect) is simply not stored. */
function decideSafely(x: CacheExchange, status: number, flat: LibHeaders): StoreDecision {
  try {
    return decideStore(x.method, x.target, x.requestHeaders, status, flat, {
      defaultTtlMs: x.cache.config.defaultTtl,
      staleIfErrorMs: x.cache.config.staleIfError ?? 0,
    });
  } catch {
    return { store: false, reason: 'unreadable' };
  }
}

function staleParts(entry: CacheEntry, status: number): CacheStatusParts {
  return { fwd: 'stale', fwdStatus: status, ttl: ttlSeconds(entry.policy), detail: 'stale-if-error' };
}

/** Answers from a stored entry; returns the body bytes sent. */
export function serveEntry(sink: ResponseSink, entry: CacheEntry, libHeaders: LibHeaders, method: string, parts: CacheStatusParts): number {
  const headers: IncomingHttpHeaders = {};
  for (const name in libHeaders) {
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    headers[name] = libHeaders[name];
  }
  if (!entry.stream) headers['content-length'] = String(entry.body.length);
  headers['cache-status'] = formatCacheStatus(parts);
  sink.start(entry.policy.status(), headers);
  const send = method !== 'HEAD' && entry.body.length > 0;
  if (send) sink.write(entry.body);
  sink.end();
  return send ? entry.body.length : 0;
}
