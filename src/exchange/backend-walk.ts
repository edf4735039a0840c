// One request's walk over one upstream pool: which backends it has tried, the next pick (never
// the same backend twice, at most maxAttempts), and what every attempt notes on its backend.
// Shared by the HTTP exchange and the WebSocket handshake, so both pick, cool down and count
// failures the same way.

import { classifyFailure, type Failure } from '../core/failure.js';
import type { CooldownDecision } from '../core/events.js';
import { isReady, pickBackend } from '../balance/select.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import { steer } from './steering.js';
import type { CompiledBackend, CompiledUpstream } from '../snapshot/snapshot.js';

export interface ExchangeContext {
  observer: ProxyObserver;
  random: () => number;
}

export class BackendWalk {
  /** Bit i set: backend i was tried. */
  tried = 0;
  attempts = 0;

  constructor(
    readonly upstream: CompiledUpstream,
    readonly context: ExchangeContext,
  ) {}

  /** This request's LLM token estimate (0 = none): steering compares it with what backends have left. */
  tokenEstimate = 0;

  /** The next backend to try now, or undefined (none ready and untried, or maxAttempts spent). */
  pick(now: number, skipSpent = true): CompiledBackend | undefined {
    if (this.attempts >= this.upstream.maxAttempts) return undefined;
    const { upstream } = this;
    steer(upstream, this.tokenEstimate, now, this.context.observer);
    return pickBackend({
      backends: upstream.backends,
      balance: upstream.balance,
      now,
      // With hold until ready, a backend that said it has no room left is skipped like a tried one.
      tried: upstream.hold === undefined || !skipSpent ? this.tried : this.tried | spentMask(upstream, now),
      random: this.context.random,
      cursor: upstream.cursor,
    });
  }

  /** True when some backend of the pool is ready now (tried or not). */
  anyReady(now: number): boolean {
    return this.upstream.backends.some((backend) => isReady(backend, now));
  }

  /** Books an attempt on `backend`: tried, in flight, counted. */
  begin(backend: CompiledBackend): void {
    this.attempts++;
    this.tried |= 1 << backend.index;
    backend.state.inFlight++;
    backend.state.requests++;
    backend.state.capacity.sent(this.tokenEstimate, Date.now());
  }

  /** The Host value for `backend` under the upstream's hostHeader setting. */
  hostFor(backend: CompiledBackend, clientHost: string | undefined): string | undefined {
    const host = this.upstream.hostHeader;
    return host === 'backend' ? backend.authority : host === 'preserve' ? clientHost : host;
  }

  /** The backend said "busy": it cools down (only ever later). Returns whether the end moved. */
  coolDown(backend: CompiledBackend, decision: CooldownDecision, now: number): boolean {
    backend.state.throttled++;
    const extended = backend.state.coolDownUntil(decision.until, decision.source, decision.value, now);
    this.context.observer.cooldown(this.upstream, backend, decision, extended);
    return extended;
  }

  /** An attempt on `backend` failed with `error`: counted, TLS failures reported. */
  failed(backend: CompiledBackend, error: Error & { code?: string }): Failure {
    const failure = classifyFailure(error);
    backend.state.errors++;
    if (failure.problem === 'upstream-tls-error')
      this.context.observer.tlsError(this.upstream, backend, error.code ?? 'TLS', error.message);
    return failure;
  }
}

/** Bit i set: backend i is ready but said it has no room left for one more request (backend-capacity.ts). */
export function spentMask(upstream: CompiledUpstream, now: number): number {
  let mask = 0;
  for (const backend of upstream.backends) {
    const { state } = backend;
    if (state.capacity.spent(state.inFlight, now)) mask |= 1 << backend.index;
  }
  return mask;
}

/** Some backend is ready but spent: it will have room again shortly (hold until ready). */
export function anyReadyButSpent(upstream: CompiledUpstream, now: number): boolean {
  return upstream.backends.some((backend) => isReady(backend, now) && backend.state.capacity.spent(backend.state.inFlight, now));
}
