// A cached route's answer from its store: the stored answer (with Age and Cache-Status), or 304
// when the client already holds it (If-None-Match against the stored ETag).

import type { IncomingMessage } from 'node:http';
import { formatCacheStatus } from '../cache/cache-status.js';
import type { CacheEntry } from '../cache/entry.js';
import { ttlSeconds, type LibHeaders } from '../cache/freshness.js';
import type { ResponseSink } from '../exchange/sink.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledRoute } from '../snapshot/snapshot.js';
import { serveEntry } from './cache-sink.js';

/** The client side of a cache hit. */
export interface HitClient {
  readonly req: IncomingMessage;
  readonly clientSink: ResponseSink;
  readonly observer: ProxyObserver;
  readonly route: CompiledRoute;
}

export function answerFromEntry(
  input: HitClient,
  entry: CacheEntry,
  headers: LibHeaders,
  method: string,
  result: 'hit' | 'stale' | 'collapsed',
): void {
  const etag = headers.etag;
  const ifNoneMatch = input.req.headers['if-none-match'];
  const parts = {
    hit: true,
    ttl: ttlSeconds(entry.policy),
    collapsed: result === 'collapsed',
    ...(result === 'stale' ? { detail: 'stale-while-revalidate' } : {}),
  };
  if (etag !== undefined && ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) {
    // The client has this answer already.
    const notModified = { ...headers };
    delete notModified['content-length'];
    notModified['cache-status'] = formatCacheStatus(parts);
    input.clientSink.start(304, notModified);
    input.clientSink.end();
    input.observer.cacheLookup(input.route, result, 0);
    return;
  }
  const bytes = serveEntry(input.clientSink, entry, headers, method, parts);
  input.observer.cacheLookup(input.route, result, bytes);
}

function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === bare);
}
