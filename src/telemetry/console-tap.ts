// What the console needs beyond the counters every request already bumps (BackendState's
// requests / throttled / errors, RouteStats): status classes and latency per backend, refusals
// per limit policy. The tap hooks into the shared observer object only while a console client is
// connected: `activate` wraps its `attempt` and `limiterDecision` entries, `deactivate` puts the
// originals back, so nobody watching means not one extra call per request.

import type { AttemptOutcome, LimiterResult } from '../core/events.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledBackend } from '../snapshot/snapshot.js';
import { bucketIndex, emptyHistogram } from './latency-histogram.js';

/** Cumulative since the tap was activated. */
export interface BackendTally {
  /** Answers with a 2xx status line. */
  ok: number;
  /** 5xx answers, and attempts that failed or timed out without one (the client sees a 502/504). */
  failed: number;
  /** Time to the status line, bucketed (latency-histogram.ts). */
  latency: number[];
}

export interface LimiterTally {
  decided: number;
  /** Over the limit, or no client key where one is required. */
  refused: number;
}

type Hooked = Pick<ProxyObserver, 'attempt' | 'limiterDecision'>;

export class ConsoleTap {
  readonly #observer: ProxyObserver;
  readonly #backends = new Map<string, BackendTally>();
  readonly #limiter = new Map<string, LimiterTally>();
  #original: Hooked | undefined;

  /** `observer` is the very object the request path calls (its entries are swapped in place). */
  constructor(observer: ProxyObserver) {
    this.#observer = observer;
  }

  get active(): boolean {
    return this.#original !== undefined;
  }

  activate(): void {
    if (this.#original) return;
    const original: Hooked = { attempt: this.#observer.attempt, limiterDecision: this.#observer.limiterDecision };
    this.#original = original;
    this.#observer.attempt = (upstream, backend, outcome, status, durationMs) => {
      original.attempt(upstream, backend, outcome, status, durationMs);
      this.recordAttempt(backend, outcome, status, durationMs);
    };
    this.#observer.limiterDecision = (policy, result) => {
      original.limiterDecision(policy, result);
      this.recordLimiter(policy, result);
    };
  }

  deactivate(): void {
    if (!this.#original) return;
    this.#observer.attempt = this.#original.attempt;
    this.#observer.limiterDecision = this.#original.limiterDecision;
    this.#original = undefined;
    this.#backends.clear();
    this.#limiter.clear();
  }

  recordAttempt(backend: Pick<CompiledBackend, 'id'>, outcome: AttemptOutcome, status: number, durationMs: number): void {
    // Skips (cooling, breaker open) and aborted attempts reached no backend answer worth counting.
    if (outcome === 'skipped_cooling' || outcome === 'breaker_open' || outcome === 'aborted') return;
    let tally = this.#backends.get(backend.id);
    if (!tally) {
      tally = { ok: 0, failed: 0, latency: emptyHistogram() };
      this.#backends.set(backend.id, tally);
    }
    if (status >= 200 && status < 300) tally.ok++;
    else if (outcome !== 'throttled' && (status >= 500 || outcome === 'error' || outcome === 'timeout')) tally.failed++;
    if (status > 0) tally.latency[bucketIndex(durationMs)]!++;
  }

  recordLimiter(policy: string, result: LimiterResult): void {
    let tally = this.#limiter.get(policy);
    if (!tally) {
      tally = { decided: 0, refused: 0 };
      this.#limiter.set(policy, tally);
    }
    tally.decided++;
    if (result === 'limited' || result === 'missing-key') tally.refused++;
  }

  backend(id: string): BackendTally | undefined {
    return this.#backends.get(id);
  }

  limiter(policy: string): LimiterTally | undefined {
    return this.#limiter.get(policy);
  }
}
