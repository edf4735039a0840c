// A cached route's way to the backend: through a CacheSink (cache-sink.ts) that stores the answer,
// as a revalidation with the stored validators, as a stale-while-revalidate refresh nobody waits
// for, or past the cache altogether (bypass).

import type { IncomingMessage } from 'node:http';
import type CachePolicy from 'http-cache-semantics';
import type { Forward } from '../cache/cache-status.js';
import type { CacheEntry } from '../cache/entry.js';
import type { LibHeaders } from '../cache/freshness.js';
import { variantKey } from '../cache/key.js';
import type { ResponseSink } from '../exchange/sink.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledCache, CompiledRoute } from '../snapshot/snapshot.js';
import type { Flight } from '../state/cache-registry.js';
import { CacheSink, type CacheExchange } from './cache-sink.js';
import type { ClientBody } from './client-body.js';

/** What the forward stage gets from the cache stage. */
export interface PreparedForward {
  /** The sink the answer goes to (the cache's, around the client's). */
  sink: ResponseSink;
  /** The body, when the cache stage read it already (keyBy: body). */
  body?: ClientBody | undefined;
  /** Conditional headers for a revalidation (If-None-Match, If-Modified-Since). */
  conditional?: LibHeaders | undefined;
  /** A background refresh: nobody waits for it (no mirror, no telemetry scope). */
  background?: boolean;
}

/** What going to the backend needs of the cache stage's input. */
export interface CacheForwardInput {
  readonly req: IncomingMessage;
  readonly route: CompiledRoute;
  readonly cache: CompiledCache;
  /** Normalised path. */
  readonly path: string;
  readonly clientSink: ResponseSink;
  readonly observer: ProxyObserver;
  forward: (prepared: PreparedForward) => void;
}

/** What a lookup found out about the request: its keys, the policy's view of it, the body read. */
export interface MissContext {
  input: CacheForwardInput;
  method: string;
  key: string;
  target: string;
  policyRequest: CachePolicy.Request;
  unkeyed: string | undefined;
  body: ClientBody | undefined;
}

/** A sink that drops everything: where background refreshes answer. */
class NullSink implements ResponseSink {
  started = false;
  onGone(): void {}
  start(): void {
    this.started = true;
  }
  write(): boolean {
    return true;
  }
  onDrain(): void {}
  end(): void {}
  problem(): void {}
  abort(): void {}
}

const CONDITIONAL = ['if-none-match', 'if-modified-since'] as const;

export function conditionalOf(headers: LibHeaders): LibHeaders {
  const out: LibHeaders = {};
  for (const name of CONDITIONAL) if (headers[name] !== undefined) out[name] = headers[name];
  // The client's own validator and the stored one may be the same tag.
  if (out['if-none-match'] !== undefined)
    out['if-none-match'] = [...new Set(out['if-none-match'].split(',').map((tag) => tag.trim()))].join(', ');
  return out;
}

export function bypass(input: CacheForwardInput, fwd: Forward, detail: string | undefined, body?: ClientBody): void {
  const x: CacheExchange = {
    route: input.route,
    cache: input.cache,
    observer: input.observer,
    method: input.req.method ?? 'GET',
    policyRequest: { method: input.req.method ?? 'GET', url: input.path, headers: {} },
    requestHeaders: input.req.headers,
    storeKey: () => ({ key: '', marker: false }),
    leads: undefined,
    target: input.path,
    stored: undefined,
    fwd,
    mayStore: false,
    detail,
  };
  input.forward({ sink: new CacheSink(input.clientSink, x), body });
}

function exchangeFor(
  context: MissContext,
  stored: CacheEntry | undefined,
  fwd: Forward,
  leads: Flight | undefined,
  collapsed: boolean,
): CacheExchange {
  const { input } = context;
  const { req, cache } = input;
  return {
    route: input.route,
    cache,
    observer: input.observer,
    method: context.method,
    policyRequest: context.policyRequest,
    requestHeaders: req.headers,
    storeKey: (vary) =>
      vary.length > 0 ? { key: variantKey(context.key, vary, req.headers), marker: true } : { key: context.key, marker: false },
    leads,
    target: context.target,
    stored,
    fwd,
    mayStore: context.unkeyed === undefined,
    detail: context.unkeyed !== undefined ? `unkeyed-header: ${context.unkeyed}` : undefined,
    collapsed,
  };
}

export function forwardMiss(
  context: MissContext,
  stored: CacheEntry | undefined,
  fwd: Forward,
  conditional: LibHeaders | undefined,
  leads: Flight | undefined,
  collapsed = false,
): void {
  const x = exchangeFor(context, stored, fwd, leads, collapsed);
  context.input.forward({ sink: new CacheSink(context.input.clientSink, x), body: context.body, conditional });
}

/** stale-while-revalidate: the refresh nobody waits for (it leads the key's lock). */
export function refresh(context: MissContext, stored: CacheEntry, conditional: LibHeaders, flight: Flight): void {
  const x = { ...exchangeFor(context, stored, 'stale', flight, false), background: true };
  const sink = new CacheSink(new NullSink(), x);
  context.input.forward({ sink, body: context.body, conditional, background: true });
}
