// The undici dispatch handler for one attempt on one backend. It hands the status line and any
// failure to its owner (the exchange) and streams an accepted answer into the owner's sink with
// backpressure; it settles the backend's breaker once and frees the backend's slot once.

import type { Dispatcher } from 'undici';
import type { AttemptOutcome } from '../core/events.js';
import type { BreakerVerdict } from '../resilience/breaker.js';
import type { CompiledBackend, CompiledUpstream } from '../snapshot/snapshot.js';
import type { ExchangeContext } from './backend-walk.js';
import type { AttemptTrace } from './request-scope.js';
import type { ResponseSink } from './sink.js';

type Controller = Dispatcher.DispatchController;

/** What an attempt needs of the exchange that started it. */
export interface AttemptOwner {
  readonly upstream: CompiledUpstream;
  readonly context: ExchangeContext;
  readonly sink: ResponseSink;
  readonly clientGone: boolean;
  onResponseStart(attempt: Attempt, status: number, headers: Record<string, string | string[] | undefined>): void;
  onAttemptError(attempt: Attempt, error: Error & { code?: string }): void;
}

export class Attempt implements Dispatcher.DispatchHandler {
  controller: Controller | undefined;
  forwarding = false;
  discarding = false;
  released = false;
  /** Breaker ticket from BackendBreaker.begin(); -1 once settled or without a breaker. */
  breakerTicket = -1;
  isRetry = false;
  /** The headers timeout of this attempt was shortened to the request deadline. */
  deadlineBound = false;
  /** This attempt's client span (tracing on). */
  trace: AttemptTrace | undefined;
  readonly startedAt = performance.now();
  #resume: (() => void) | undefined;

  constructor(
    readonly owner: AttemptOwner,
    readonly backend: CompiledBackend,
  ) {}

  elapsed(): number {
    return performance.now() - this.startedAt;
  }

  /** Reports this attempt's outcome to the observer (metrics, logs) and its span. */
  report(outcome: AttemptOutcome, status: number): void {
    this.owner.context.observer.attempt(this.owner.upstream, this.backend, outcome, status, this.elapsed());
    this.trace?.outcome(outcome, status);
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.owner.clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(_controller: Controller, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return;
    this.owner.onResponseStart(this, status, headers);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.forwarding) return;
    const { sink } = this.owner;
    if (!sink.write(chunk)) {
      controller.pause();
      this.#resume ??= () => this.controller?.resume();
      sink.onDrain(this.#resume);
    }
  }

  onResponseEnd(): void {
    this.release();
    if (this.forwarding) this.owner.sink.end();
    this.trace?.end();
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.release(false);
    if (!this.discarding) this.owner.onAttemptError(this, error);
    this.settle('neutral');
    this.trace?.end();
  }

  /** Keep reading (and dropping) a throttled response so its connection stays reusable. */
  discard(): void {
    this.discarding = true;
  }

  abort(reason: Error = new Error('client closed the connection')): void {
    const controller = this.controller;
    if (controller && !controller.aborted) controller.abort(reason);
  }

  /** Tells the backend's breaker how this attempt went (once). */
  settle(verdict: BreakerVerdict): void {
    if (this.breakerTicket < 0) return;
    const ticket = this.breakerTicket;
    this.breakerTicket = -1;
    this.backend.state.breaker?.end(ticket, verdict);
  }

  /** Frees the backend slot; `settleBreaker` false when the caller settles the breaker itself. */
  release(settleBreaker = true): void {
    if (this.released) return;
    this.released = true;
    if (settleBreaker) this.settle('neutral');
    const { state } = this.backend;
    if (this.isRetry) state.retriesInFlight--;
    state.releaseSlot();
  }
}
