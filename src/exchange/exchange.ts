// One client request's trip through an upstream pool: pick a backend, dispatch, and on a
// throttle answer (429, or 503 with a retry hint) cool that backend down and go straight to the
// next one — no sleep. The decision is made on the status line and headers, before any byte
// reaches the client (response-start.ts); once the response streams, there is no retry.
// Every attempt reports to its backend's breaker; failures may be retried (resilience/retry.ts)
// within the retry budget and the request deadline; when every backend is full the request
// waits in a bounded queue; when none can serve, the route's fallback or a problem answer with
// Retry-After (pool-answers.ts).

import type { FailureKind } from '../core/failure.js';
import { isReady, poolBlock, type PoolBlock } from '../balance/select.js';
import { HoldTicket, type HoldOwner } from './hold-ticket.js';
import { SlotWait, type SlotWaitOwner } from './slot-wait.js';
import { isIdempotent } from '../resilience/retry.js';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import { Attempt, type AttemptOwner } from './attempt.js';
import { anyReadyButSpent, BackendWalk, type ExchangeContext } from './backend-walk.js';
import { AnswerWatchSink } from './delegating-sink.js';
import { buildResponseHeaders } from './forward-headers.js';
import { dispatchOptions, type ForwardRequest } from './forward-request.js';
import { answerFailure, answerPoolBlocked, reportSkippedCooling, takeFallback } from './pool-answers.js';
import { answerDeadlineExceeded, RequestDeadline } from './request-deadline.js';
import { planRetry } from './retry-plan.js';
import { type ResponseStartOwner, wentOnElsewhere } from './response-start.js';
import type { ResponseSink } from './sink.js';

export type { ExchangeContext, ForwardRequest };

export class ProxyExchange extends BackendWalk implements AttemptOwner, HoldOwner, ResponseStartOwner, SlotWaitOwner {
  /** Failure retries so far (throttle failovers are not retries). */
  retries = 0;
  clientGone = false;
  current: Attempt | undefined;
  readonly startedAt: number;
  /** retry.deadline over all attempts. */
  readonly deadline = new RequestDeadline();
  /** Epoch ms bounding all attempts; 0 = none (what the retry plan and a hold read). */
  get deadlineAt(): number {
    return this.deadline.at;
  }
  #slotWait: SlotWait | undefined;
  #retryTimer: { timer: NodeJS.Timeout; backend: CompiledBackend } | undefined;
  #idempotent: boolean | undefined;
  #holdTicket: HoldTicket | undefined;

  readonly sink: ResponseSink;

  constructor(
    sink: ResponseSink,
    readonly route: CompiledRoute,
    upstream: CompiledUpstream,
    readonly forward: ForwardRequest,
    context: ExchangeContext,
    /** True for a route fallback's (or a mirror's) exchange: the route's fallback is not used. */
    readonly noFallback = false,
  ) {
    super(upstream, context);
    this.tokenEstimate = forward.tokenEstimate ?? 0;
    this.startedAt = performance.now();
    // With a deadline, the sink tells us when the answer starts so the deadline timer stops.
    this.sink = (upstream.resilience.retry?.deadline ?? 0) === 0 ? sink : new AnswerWatchSink(sink, () => this.deadline.clear());
  }

  start(): void {
    this.sink.onGone(() => {
      this.clientGone = true;
      this.current?.abort();
      this.#cancelWaits();
      this.deadline.clear();
    });
    const now = Date.now();
    const retry = this.upstream.resilience.retry;
    if (retry !== undefined && retry.deadline > 0) this.deadline.start(retry.deadline, now, () => this.#onDeadline());
    reportSkippedCooling(this.upstream, now, this.context.observer);
    const backend = this.pick(now);
    if (backend) this.dispatchTo(backend, false);
    else this.noBackend(now);
  }

  dispatchTo(backend: CompiledBackend, isRetry: boolean): void {
    this.begin(backend);
    const { forward, upstream } = this;
    const hostValue = this.hostFor(backend, forward.clientHost);
    if (hostValue !== undefined) forward.headers.host = hostValue;
    const attempt = new Attempt(this, backend);
    const { state } = backend;
    if (state.breaker !== undefined) attempt.breakerTicket = state.breaker.begin();
    if (isRetry) {
      attempt.isRetry = true;
      state.retriesInFlight++;
    }
    this.current = attempt;
    const scope = forward.scope;
    if (scope) {
      scope.attempts++;
      scope.upstream = upstream;
      scope.backend = backend;
      // Injects traceparent/tracestate for this attempt's client span.
      if (scope.trace) attempt.trace = scope.trace.attempt(upstream, backend, scope.attempts, forward.headers);
    }
    let headersTimeout = upstream.timeouts.headers;
    if (this.deadline.at !== 0) {
      const left = this.deadline.at - Date.now();
      if (left < headersTimeout) {
        headersTimeout = Math.max(1, left);
        attempt.deadlineBound = true;
      }
    }
    backend.dispatcher.dispatch(dispatchOptions(backend, forward, headersTimeout, upstream.timeouts.idle), attempt);
  }

  /** Status line and headers are in: throttle → next backend at once; retryable failure → retry; otherwise stream to the client. */
  onResponseStart(attempt: Attempt, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (wentOnElsewhere(this, attempt, status, headers)) return;
    if (this.clientGone) {
      attempt.abort();
      return;
    }
    attempt.forwarding = true;
    this.sink.start(status, buildResponseHeaders(headers));
  }

  /** The attempt failed before its response started (or mid-stream). */
  onAttemptError(attempt: Attempt, error: Error & { code?: string }): void {
    if (this.clientGone) {
      attempt.settle('neutral');
      return;
    }
    if (this.deadline.passed) {
      // Cut by the request deadline, already answered: the backend was too slow.
      attempt.settle('failure');
      return;
    }
    const failure = this.failed(attempt.backend, error);
    const code = failure.problem;
    attempt.settle(failure.clientFault ? 'neutral' : 'failure');
    attempt.report(failure.timedOut ? 'timeout' : 'error', 0);
    if (this.sink.started) {
      this.sink.abort(error);
      return;
    }
    if (failure.clientFault) {
      // The client's body is cut: answer and close, the connection's framing is lost.
      this.sink.problem(code, error.message, { headers: { connection: 'close' } });
      return;
    }
    if (this.retryAfterFailure(attempt, failure.kind, 0, code)) return;
    if (attempt.deadlineBound && failure.kind === 'timeout') {
      answerDeadlineExceeded(this.sink, this.upstream);
      return;
    }
    answerFailure(this.sink, this.upstream.name, failure, error, this.forward.method, this.idempotent);
  }

  get idempotent(): boolean {
    const idempotency = this.route.idempotency;
    return (this.#idempotent ??= isIdempotent(
      this.forward.method,
      this.forward.headers,
      idempotency?.retryOnReset ? idempotency.header : undefined,
    ));
  }

  /**
   * Sends the request again after a failure when that is safe and allowed (retry-plan.ts).
   * Returns false when the failure must be answered instead.
   */
  retryAfterFailure(attempt: Attempt, kind: FailureKind, status: number, reason: string): boolean {
    if (!this.forward.replayable || this.clientGone || this.sink.started) return false;
    const plan = planRetry(this, attempt.backend, kind, status, Date.now());
    if (plan === undefined) return false;
    this.context.observer.retry(this.upstream, attempt.backend, reason);
    attempt.trace?.retried(reason);
    if (!plan.counted) {
      this.dispatchTo(plan.backend, false);
      return true;
    }
    this.retries++;
    attempt.discard();
    if (plan.delay === 0) {
      this.dispatchTo(plan.backend, true);
      return true;
    }
    // The waiting retry counts against the budget too.
    const { backend: target, delay } = plan;
    target.state.retriesInFlight++;
    this.#retryTimer = {
      backend: target,
      timer: setTimeout(() => {
        this.#retryTimer = undefined;
        target.state.retriesInFlight--;
        if (this.clientGone) return;
        const at = Date.now();
        if (this.deadline.over(at)) {
          answerDeadlineExceeded(this.sink, this.upstream);
        } else if (isReady(target, at)) {
          this.dispatchTo(target, true);
        } else {
          this.noBackend(at);
        }
      }, delay),
    };
    return true;
  }

  /** No backend can take the request now: wait for a concurrency slot, or answer for the pool. */
  noBackend(now: number): void {
    const block = poolBlock(this.upstream.backends, now);
    if (block.kind === 'full' && !(this.upstream.hold !== undefined && anyReadyButSpent(this.upstream, now))) {
      this.#enqueue(block.backend);
      return;
    }
    if (block.kind === 'throttled' && this.#hold(block.readyAt, now)) return;
    // Ready backends that said they have no room: hold until the pacer finds room (or maxWait).
    if (this.upstream.hold !== undefined && anyReadyButSpent(this.upstream, now)) {
      if (this.#hold(now, now)) return;
      // Cannot hold (queue full, maxWait spent): let the backend itself say whether it has room.
      const next = this.pick(now, false);
      if (next) {
        this.dispatchTo(next, false);
        return;
      }
    }
    if (this.fallBack()) return;
    answerPoolBlocked(this.sink, this.route, this.upstream, block, now, this.context.observer);
  }

  /** Holds the request until a cooling backend is ready, when the upstream holds and it is back soon enough. */
  #hold(readyAt: number, now: number): boolean {
    if (this.upstream.hold === undefined) return false;
    return (this.#holdTicket ??= new HoldTicket(this)).tryHold(readyAt, now);
  }

  /** HoldOwner: the hold ended; a fresh walk over the pool (the backends tried before were cooling, not broken). */
  resumeAfterHold(now: number, expired: boolean): void {
    this.tried = 0;
    this.attempts = 0;
    const next = this.pick(now);
    if (next) {
      this.dispatchTo(next, false);
      return;
    }
    if (!expired) {
      this.noBackend(now);
      return;
    }
    if (this.fallBack()) return;
    const block = poolBlock(this.upstream.backends, now);
    const answered: PoolBlock<CompiledBackend> = block.kind === 'full' ? { kind: 'throttled', readyAt: now + 1000 } : block;
    answerPoolBlocked(this.sink, this.route, this.upstream, answered, now, this.context.observer);
  }

  /** The route's fallback, when it has one and this is not already the fallback. */
  fallBack(): boolean {
    if (this.noFallback) return false;
    return takeFallback(this.route, this.sink, (upstream) => {
      if (this.attempts > 0 && !this.forward.replayable) return false;
      new ProxyExchange(this.sink, this.route, upstream, this.forward, this.context, true).start();
      return true;
    });
  }

  #enqueue(backend: CompiledBackend): void {
    (this.#slotWait ??= new SlotWait(this)).enqueue(backend);
  }

  #onDeadline(): void {
    if (this.sink.started || this.clientGone) return;
    this.deadline.passed = true;
    this.#cancelWaits();
    const attempt = this.current;
    if (attempt !== undefined && !attempt.released) {
      this.context.observer.attempt(this.upstream, attempt.backend, 'timeout', 0, attempt.elapsed());
      attempt.abort(new Error('request deadline passed'));
    }
    answerDeadlineExceeded(this.sink, this.upstream);
  }

  #cancelWaits(): void {
    this.#holdTicket?.cancel();
    this.#slotWait?.cancel();
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer.timer);
      this.#retryTimer.backend.state.retriesInFlight--;
      this.#retryTimer = undefined;
    }
  }
}
