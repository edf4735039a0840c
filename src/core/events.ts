// What the request path reports as it decides. Telemetry (metrics, logs, traces) implements this;
// the request path never imports telemetry code. Every method has a no-op in silentObserver, and
// `withDefaults` fills in what an implementation leaves out.

import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import type { CooldownDecision } from '../resilience/cooldown.js';

export type AttemptOutcome = 'ok' | 'throttled' | 'error' | 'timeout' | 'breaker_open' | 'skipped_cooling' | 'aborted';
export type BreakerState = 'closed' | 'open' | 'half-open';
export type WebSocketCloseReason = 'closed' | 'idle' | 'shutdown' | 'error';
/** error: the store could not decide (onRedisError open/closed); missing-key: no client key (401). */
export type LimiterResult = 'allowed' | 'limited' | 'queued' | 'error' | 'missing-key';

export interface MirrorComparison {
  statusEqual: boolean;
  /** undefined when bodies were not compared */
  bodyEqual: boolean | undefined;
  primaryStatus: number;
  shadowStatus: number;
  primaryMs: number;
  shadowMs: number;
}

export interface ProxyObserver {
  // core (issue 2)
  /** A backend entered (or extended) a cooldown. `extended` is false when the end did not move. */
  cooldown(upstream: CompiledUpstream, backend: CompiledBackend, decision: CooldownDecision, extended: boolean): void;
  /** One attempt on one backend got its status line (or failed before it). status 0 = no response. */
  attempt(upstream: CompiledUpstream, backend: CompiledBackend, outcome: AttemptOutcome, status: number, durationMs: number): void;
  /** The gateway answered 429 itself because no backend of the pool was ready. */
  poolExhausted(route: CompiledRoute, retryAfterMs: number, upstream?: CompiledUpstream): void;
  /** A backend's TLS handshake or certificate check failed (unknown CA, expired, wrong name). */
  tlsError(upstream: CompiledUpstream, backend: CompiledBackend, code: string, reason: string): void;
  /** A WebSocket tunnel to a backend opened (after its 101). */
  websocketOpened(upstream: CompiledUpstream, backend: CompiledBackend): void;
  /** A WebSocket tunnel ended: either side closed, idle timeout, gateway shutdown, or a socket error. */
  websocketClosed(upstream: CompiledUpstream, backend: CompiledBackend, reason: WebSocketCloseReason, durationMs: number): void;
  /** A backend's throttle answer (429, or 503 with a hint) went to the client: no failover was possible. */
  throttlePassedThrough(upstream: CompiledUpstream, backend: CompiledBackend, status: number): void;
  /** A client request finished. */
  request(route: CompiledRoute | undefined, method: string, status: number, durationMs: number, attempts: number): void;

  // client rate limits (issue 3)
  limiterDecision(policy: string, result: LimiterResult): void;
  limiterDegraded(degraded: boolean, reason: string): void;

  // resilience (issue 4)
  breakerStateChange(upstream: CompiledUpstream, backend: CompiledBackend, state: BreakerState): void;
  healthChange(upstream: CompiledUpstream, backend: CompiledBackend, healthy: boolean): void;
  retry(upstream: CompiledUpstream, backend: CompiledBackend, reason: string): void;
  concurrencyRejected(upstream: CompiledUpstream, backend: CompiledBackend | undefined, reason: 'queue-full' | 'wait-expired'): void;

  // routing (issue 5)
  configReload(result: 'ok' | 'rejected', detail: string): void;
  mirrorCompared(route: CompiledRoute, comparison: MirrorComparison): void;

  // fan-out (issue 6)
  aggregatePart(route: CompiledRoute, part: string, outcome: 'ok' | 'error' | 'timeout', durationMs: number): void;
  aggregateResponse(route: CompiledRoute, partial: boolean, status: number): void;
}

export const silentObserver: ProxyObserver = {
  cooldown() {},
  attempt() {},
  poolExhausted() {},
  tlsError() {},
  websocketOpened() {},
  websocketClosed() {},
  throttlePassedThrough() {},
  request() {},
  limiterDecision() {},
  limiterDegraded() {},
  breakerStateChange() {},
  healthChange() {},
  retry() {},
  concurrencyRejected() {},
  configReload() {},
  mirrorCompared() {},
  aggregatePart() {},
  aggregateResponse() {},
};

/** A full observer from a partial one (the rest are no-ops). */
export function withDefaults(partial: Partial<ProxyObserver>): ProxyObserver {
  return { ...silentObserver, ...partial };
}

/** Calls every observer in turn (metrics + logs + traces). */
export function combineObservers(...observers: ProxyObserver[]): ProxyObserver {
  const combined = {} as Record<keyof ProxyObserver, (...args: never[]) => void>;
  for (const name of Object.keys(silentObserver) as Array<keyof ProxyObserver>) {
    const calls = observers.map((observer) => (observer[name] as (...args: unknown[]) => void).bind(observer));
    combined[name] = (...args: never[]) => {
      for (const call of calls) call(...args);
    };
  }
  return combined as unknown as ProxyObserver;
}
