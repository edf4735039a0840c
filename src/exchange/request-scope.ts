// What one client request carries through the request path for telemetry: its id, the route it
// matched, how many upstream attempts it took, and (when tracing is on) the hooks that open a
// client span per attempt. The telemetry layer creates it; the request path only fills it in.
// It is absent (undefined) when no telemetry needs it, so plain pass-through does no extra work.

import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import type { AttemptOutcome, CooldownDecision, TokenUse } from '../core/events.js';

/** One upstream attempt as the tracer sees it. */
export interface AttemptTrace {
  /** The status line arrived (or the attempt failed before it): status 0 = no response. */
  outcome(outcome: AttemptOutcome, status: number): void;
  /** This attempt failed and the request is retried (next attempt, or after a backoff) for `reason`. */
  retried(reason: string): void;
  /** This attempt's answer set (or extended) a cooldown. */
  cooldown(decision: CooldownDecision, extended: boolean): void;
  /** The attempt is over (body done, discarded or failed). Safe to call twice. */
  end(): void;
}

/** Opens attempt spans for one request; injects trace context into the outgoing headers. */
export interface RequestTrace {
  attempt(
    upstream: CompiledUpstream,
    backend: CompiledBackend,
    attemptNumber: number,
    headers: Record<string, string | string[]>,
  ): AttemptTrace;
}

export interface RequestScope {
  /** The request id (x-request-id by default), kept from the client or generated. */
  readonly id: string;
  route: CompiledRoute | undefined;
  /** Upstream attempts made so far. */
  attempts: number;
  /** The upstream and backend of the latest attempt. */
  upstream: CompiledUpstream | undefined;
  backend: CompiledBackend | undefined;
  readonly trace: RequestTrace | undefined;
  /** What an LLM answer used (routes with a token policy), for the request log line. */
  tokens?: TokenUse | undefined;
  /** ms the request was held until a backend was ready (throttle.hold); absent when never held. */
  heldMs?: number;
}

/**
 * A scope for a sub-request of the client request (a fan-out part): same id, route and trace
 * (its attempts become spans under the request's server span), its own attempt counters.
 */
export function partScope(scope: RequestScope): RequestScope {
  return { id: scope.id, route: scope.route, attempts: 0, upstream: undefined, backend: undefined, trace: scope.trace };
}
