// The gateway's own answers for a pool that cannot take a request: every backend cooling (429),
// breakers open or unhealthy (503), every backend at its concurrency limit (503), or the
// route's static fallback.

import type { PoolBlock } from '../balance/select.js';
import type { Failure } from '../core/failure.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import type { ResponseSink } from './sink.js';

/** One `skipped_cooling` attempt per backend this request passes over because it is cooling down. */
export function reportSkippedCooling(upstream: CompiledUpstream, now: number, observer: ProxyObserver): void {
  for (const backend of upstream.backends) {
    if (backend.state.cooldownUntil > now) observer.attempt(upstream, backend, 'skipped_cooling', 0, 0);
  }
}

/** The gateway's own answer when no backend can take the request: 429 (all cooling) or 503 (broken/unhealthy). */
export function answerPoolBlocked(
  sink: ResponseSink,
  route: CompiledRoute,
  upstream: CompiledUpstream,
  block: PoolBlock<CompiledBackend>,
  now: number,
  observer: ProxyObserver,
): void {
  if (block.kind === 'full') {
    sendConcurrencyLimited(sink, upstream, 'queue-full');
    return;
  }
  const waitMs = Math.max(1, Math.ceil(block.readyAt - now));
  if (block.kind === 'throttled') {
    observer.poolExhausted(route, waitMs, upstream);
    sink.problem('all-backends-throttled', `every backend of upstream "${upstream.name}" is cooling down`, {
      headers: retryAfterHeaders(waitMs),
      extensions: { upstream: upstream.name, retryAfterMs: waitMs },
    });
    return;
  }
  for (const backend of upstream.backends) {
    if (backend.state.breaker !== undefined && !backend.state.breaker.canPass()) observer.attempt(upstream, backend, 'breaker_open', 0, 0);
  }
  sink.problem(
    'all-backends-unavailable',
    `no backend of upstream "${upstream.name}" is available (breakers open or health checks failing)`,
    {
      headers: retryAfterHeaders(waitMs),
      extensions: { upstream: upstream.name, retryAfterMs: waitMs },
    },
  );
}

/**
 * A failed attempt that is not retried, answered: its problem type, and for a request that may
 * have reached the backend and is not idempotent, why it was not sent again.
 */
export function answerFailure(
  sink: ResponseSink,
  upstream: string,
  failure: Failure,
  error: Error,
  method: string,
  idempotent: boolean,
): void {
  if (failure.kind === 'reset' && !idempotent) {
    sink.problem(
      failure.problem,
      `${upstream}: ${error.message}. The connection broke after the ${method} request was sent, so the backend may have received it; it was not sent again because ${method} is not idempotent.`,
      { extensions: { upstream, mayHaveBeenReceived: true, replayed: false } },
    );
    return;
  }
  sink.problem(failure.problem, `${upstream}: ${error.message}`, { extensions: { upstream } });
}

/** 503: every backend is at its concurrency limit and the queue is full or the wait expired. */
export function sendConcurrencyLimited(sink: ResponseSink, upstream: CompiledUpstream, reason: 'queue-full' | 'wait-expired'): void {
  const waitMs = 1000;
  const detail = reason === 'queue-full' ? 'its queue is full' : 'no slot freed within maxWait';
  sink.problem('concurrency-limit', `every backend of upstream "${upstream.name}" is at its concurrency limit and ${detail}`, {
    headers: retryAfterHeaders(waitMs),
    extensions: { upstream: upstream.name, reason, retryAfterMs: waitMs },
  });
}

/**
 * The route's fallback when its upstream cannot serve: a static answer, or `sendTo` its fallback
 * upstream (which may decline, e.g. when the body can no longer be replayed). False when the
 * route has no fallback or it declined: the caller answers for the pool itself.
 */
export function takeFallback(route: CompiledRoute, sink: ResponseSink, sendTo: (upstream: CompiledUpstream) => boolean): boolean {
  const fallback = route.fallback;
  if (fallback === undefined) return false;
  sink.fallingBack?.();
  if (fallback.kind === 'upstream') return sendTo(fallback.upstream);
  sendStaticFallback(sink, fallback.status, fallback.headers, fallback.body);
  return true;
}

export function sendStaticFallback(sink: ResponseSink, status: number, headers: Readonly<Record<string, string>>, body: string): void {
  const bytes = Buffer.from(body);
  sink.gatewayAnswer?.();
  sink.start(status, { 'content-type': 'text/plain; charset=utf-8', ...headers, 'content-length': String(bytes.length) });
  if (bytes.length > 0) sink.write(bytes);
  sink.end();
}

function retryAfterHeaders(waitMs: number): Record<string, string> {
  return { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))), 'retry-after-ms': String(waitMs) };
}
