// The cache stage of a cached route, before forwarding (docs/caching.md):
//   key      method, host, normalised path + query, keyBy headers, the JSON body's hash (LLM)
//   lookup   fresh → answer from the store (Age, Cache-Status: hit)
//            stale within stale-while-revalidate → answer it, refresh in the background
//            stale or must revalidate → forward with If-None-Match / If-Modified-Since
//   miss     the first request for a key goes to the backend; identical ones wait for its entry
//            (collapsed forwarding, bounded by lockTimeout), then answer from it
//   forward  (cache-forward.ts) through a CacheSink (cache-sink.ts): stores the answer, handles
//            304, and serves the stored answer instead of an error while stale-if-error allows it
// A store that cannot answer (Redis down) reads as a miss: the cache is skipped, never an error.

import type { IncomingMessage } from 'node:http';
import type CachePolicy from 'http-cache-semantics';
import { bodyKey } from '../cache/body-key.js';
import type { Forward } from '../cache/cache-status.js';
import { isVaryMarker, type CacheEntry, type StoredValue } from '../cache/entry.js';
import { evaluate, libHeaders } from '../cache/freshness.js';
import { cacheKey, unkeyedInput, variantKey } from '../cache/key.js';
import type { ResponseSink } from '../exchange/sink.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledCache, CompiledRoute } from '../snapshot/snapshot.js';
import { bypass, conditionalOf, forwardMiss, type MissContext, type PreparedForward, refresh } from './cache-forward.js';
import { answerFromEntry } from './cache-hit.js';
import type { ClientBody } from './client-body.js';

export type { PreparedForward };

/** How long a leader may hold a key before a new request takes over (its leader never reported back). */
function maxHold(cache: CompiledCache): number {
  return Math.max(60_000, cache.config.lockTimeout * 10);
}

export interface CacheStageInput {
  req: IncomingMessage;
  route: CompiledRoute;
  cache: CompiledCache;
  /** Normalised path and the query as sent. */
  path: string;
  query: string;
  clientSink: ResponseSink;
  observer: ProxyObserver;
  /** Reads the client's body (POST routes keyed by body). */
  readBody: () => ClientBody | Promise<ClientBody>;
  forward: (prepared: PreparedForward) => void;
  /** Set once the request went on to the backend. */
  forwarded?: boolean;
}

/**
 * Runs a continuation of the stage after an await. A defect in it must not become an unhandled
 * rejection (which ends the process): the request is then forwarded without the cache, unless it
 * was forwarded or answered already.
 */
function guarded<T>(input: CacheStageInput, step: (value: T) => void): (value: T) => void {
  return (value) => {
    try {
      step(value);
    } catch {
      if (!input.forwarded && !input.clientSink.started) bypass(input, 'bypass', 'cache-error');
    }
  };
}

export function runCacheStage(stageInput: CacheStageInput): void {
  // Notes when the request went on to the backend (see guarded()).
  const input: CacheStageInput = {
    ...stageInput,
    forward: (prepared) => {
      input.forwarded = true;
      stageInput.forward(prepared);
    },
  };
  const { req, cache } = input;
  const method = req.method ?? 'GET';
  const cacheable = method === 'GET' || method === 'HEAD' || (method === 'POST' && cache.byBody);
  if (!cacheable) {
    bypass(input, 'method', undefined);
    return;
  }
  if (method !== 'POST') {
    lookup(input, method, undefined, undefined);
    return;
  }
  const body = input.readBody();
  const go = (read: ClientBody) => {
    if (read.kind !== 'buffer') {
      bypass(input, 'bypass', read.kind === 'stream' ? 'body-too-large' : undefined, read);
      return;
    }
    const key = bodyKey(read.body, req.headers, cache.config.deterministicHeader);
    if ('skip' in key) {
      bypass(input, 'bypass', key.skip, read);
      return;
    }
    lookup(input, method, key.hash, read);
  };
  if (body instanceof Promise)
    body.then(
      guarded(input, go),
      guarded(input, () => bypass(input, 'bypass', 'body-error', { kind: 'aborted' })),
    );
  else go(body);
}

function lookup(input: CacheStageInput, method: string, bodyHash: string | undefined, body: ClientBody | undefined): void {
  const { req, cache, route } = input;
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
  const key = cacheKey({
    route: route.name,
    method,
    host,
    path: input.path,
    query: input.query,
    headers: req.headers,
    keyBy: cache.keyBy,
    bodyHash,
  });
  if (key === undefined) {
    bypass(input, 'bypass', 'target-too-long', body);
    return;
  }
  const headers = libHeaders(req.headers);
  // HTTP/2 clients send :authority, not Host: the entry remembers the host either way.
  if (host !== undefined) headers.host = host;
  const policyRequest: CachePolicy.Request = { method: method === 'HEAD' ? 'GET' : method, url: key.target, headers };
  const unkeyed = unkeyedInput(req.headers, cache.keyBy);
  const found = readEntry(cache, key.primary, req);
  const decide = (value: { entry: CacheEntry | undefined; varyMiss: boolean }) => {
    const context: LookupContext = { input, method, key: key.primary, target: key.target, policyRequest, unkeyed, body };
    decideLookup(context, value.entry, value.varyMiss);
  };
  if (found instanceof Promise)
    found.then(
      guarded(input, decide),
      guarded(input, () => decide({ entry: undefined, varyMiss: false })),
    );
  else decide(found);
}

interface LookupContext extends MissContext {
  input: CacheStageInput;
}

type Found = { entry: CacheEntry | undefined; varyMiss: boolean };

/** The entry for this request: the primary key's, or its variant's when the answer had Vary. */
function readEntry(cache: CompiledCache, primary: string, req: IncomingMessage): Found | Promise<Found> {
  const first = cache.store.get(primary);
  const resolve = (value: StoredValue | undefined): Found | Promise<Found> => {
    if (value === undefined) return { entry: undefined, varyMiss: false };
    if (!isVaryMarker(value)) return { entry: value, varyMiss: false };
    const variant = cache.store.get(variantKey(primary, value.vary, req.headers));
    const settle = (v: StoredValue | undefined): Found =>
      v !== undefined && !isVaryMarker(v) ? { entry: v, varyMiss: false } : { entry: undefined, varyMiss: true };
    return variant instanceof Promise ? variant.then(settle, () => ({ entry: undefined, varyMiss: true })) : settle(variant);
  };
  return first instanceof Promise ? first.then(resolve) : resolve(first);
}

function decideLookup(context: LookupContext, entry: CacheEntry | undefined, varyMiss: boolean): void {
  const { input, method } = context;
  if (entry !== undefined) {
    const lookup = evaluate(entry.policy, context.policyRequest);
    if (lookup.kind === 'fresh') {
      answerFromEntry(input, entry, lookup.headers, method, 'hit');
      return;
    }
    if (lookup.kind === 'stale-while-revalidate') {
      answerFromEntry(input, entry, lookup.headers, method, 'stale');
      const flight = method === 'HEAD' ? undefined : input.cache.locks.lead(context.key, maxHold(input.cache));
      if (flight !== undefined) refresh(context, entry, conditionalOf(lookup.revalidate), flight);
      return;
    }
    const fwd: Forward = entry.policy.stale() ? 'stale' : 'request';
    forwardMiss(context, entry, fwd, conditionalOf(lookup.revalidate), undefined);
    return;
  }
  const fwd: Forward = varyMiss ? 'vary-miss' : 'uri-miss';
  // HEAD cannot fill the cache (no body): it never leads nor waits.
  if (method === 'HEAD') {
    forwardMiss(context, undefined, fwd, undefined, undefined);
    return;
  }
  const flight = input.cache.locks.lead(context.key, maxHold(input.cache));
  if (flight !== undefined) {
    forwardMiss(context, undefined, fwd, undefined, flight);
    return;
  }
  input.cache.locks.wait(context.key, input.cache.config.lockTimeout).then(
    guarded(input, (leaderEntry: CacheEntry | undefined) => {
      if (leaderEntry !== undefined) {
        const lookup = evaluate(leaderEntry.policy, context.policyRequest);
        if (lookup.kind === 'fresh') {
          answerFromEntry(input, leaderEntry, lookup.headers, method, 'collapsed');
          return;
        }
      }
      // The leader stored nothing usable for us, or took too long: on our own.
      forwardMiss(context, leaderEntry, fwd, undefined, undefined, true);
    }),
  );
}
