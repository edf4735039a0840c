// What the upstream call path reports as it decides. Telemetry (metrics, logs, traces) plugs in
// here; the call path never imports telemetry code.

import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../runtime/snapshot.js';
import type { CooldownDecision } from './cooldown.js';

export type AttemptOutcome = 'ok' | 'throttled' | 'error' | 'timeout' | 'aborted';

export interface ProxyObserver {
  /** A backend entered (or extended) a cooldown. */
  cooldown(upstream: CompiledUpstream, backend: CompiledBackend, decision: CooldownDecision, extended: boolean): void;
  /** One attempt on one backend finished its status line (or failed before it). */
  attempt(upstream: CompiledUpstream, backend: CompiledBackend, outcome: AttemptOutcome, status: number, durationMs: number): void;
  /** The gateway answered 429 itself because no backend was ready. */
  poolExhausted(route: CompiledRoute, retryAfterMs: number): void;
  /** A client request finished. */
  request(route: CompiledRoute | undefined, method: string, status: number, durationMs: number, attempts: number): void;
}

export const silentObserver: ProxyObserver = {
  cooldown() {},
  attempt() {},
  poolExhausted() {},
  request() {},
};
