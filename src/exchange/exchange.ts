// One client request's trip through an upstream pool: pick a backend, dispatch, and on a
// throttle answer (429, or 503 with a retry hint) cool that backend down and go straight to the
// next one — no sleep. The decision is made on the status line and headers, before any byte
// reaches the client; once the response streams, there is no retry.
// Every attempt reports to its backend's breaker; failures may be retried (resilience/retry.ts)
// within the retry budget and the request deadline; when every backend is full the request
// waits in a bounded queue; when none can serve, the route's fallback or a problem answer with
// Retry-After (pool-answers.ts).

import type { FailureKind } from '../core/failure.js';
import { isReady, poolBlock } from '../balance/select.js';
import type { QueueEntry, QueueWaiter } from '../resilience/concurrency.js';
import { throttleCooldown } from '../resilience/cooldown.js';
import { isIdempotent } from '../resilience/retry.js';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import { Attempt, type AttemptOwner } from './attempt.js';
import { BackendWalk, type ExchangeContext } from './backend-walk.js';
import { AnswerWatchSink } from './delegating-sink.js';
import { buildResponseHeaders } from './forward-headers.js';
import { dispatchOptions, type ForwardRequest } from './forward-request.js';
import { answerPoolBlocked, reportSkippedCooling, sendConcurrencyLimited, takeFallback } from './pool-answers.js';
import { planRetry } from './retry-plan.js';
import { learnCapacity } from './steering.js';
import type { ResponseSink } from './sink.js';

export type { ExchangeContext, ForwardRequest };

export class ProxyExchange extends BackendWalk implements AttemptOwner, QueueWaiter {
  /** Failure retries so far (throttle failovers are not retries). */
  retries = 0;
  clientGone = false;
  current: Attempt | undefined;
  readonly startedAt: number;
  /** Epoch ms bounding all attempts (retry.deadline); 0 = none. */
  deadlineAt = 0;
  #waitingOn: CompiledBackend | undefined;
  #queueEntry: QueueEntry | undefined;
  #retryTimer: { timer: NodeJS.Timeout; backend: CompiledBackend } | undefined;
  #idempotent: boolean | undefined;

  readonly sink: ResponseSink;
  /** Set when retry.deadline passed before a response started: the exchange has answered 504. */
  deadlinePassed = false;
  #deadlineTimer: NodeJS.Timeout | undefined;

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
    this.sink = upstream.resilience.retry === undefined ? sink : new AnswerWatchSink(sink, () => this.#clearDeadline());
  }

  start(): void {
    this.sink.onGone(() => {
      this.clientGone = true;
      this.current?.abort();
      this.#cancelWaits();
      this.#clearDeadline();
    });
    const now = Date.now();
    const retry = this.upstream.resilience.retry;
    if (retry !== undefined) {
      this.deadlineAt = now + retry.deadline;
      this.#deadlineTimer = setTimeout(() => this.#onDeadline(), retry.deadline);
    }
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
    if (this.deadlineAt !== 0) {
      const left = this.deadlineAt - Date.now();
      if (left < headersTimeout) {
        headersTimeout = Math.max(1, left);
        attempt.deadlineBound = true;
      }
    }
    backend.dispatcher.dispatch(dispatchOptions(backend, forward, headersTimeout, upstream.timeouts.idle), attempt);
  }

  /** Status line and headers are in: throttle → next backend at once; retryable failure → retry; otherwise stream to the client. */
  onResponseStart(attempt: Attempt, status: number, headers: Record<string, string | string[] | undefined>): void {
    const { backend } = attempt;
    const now = Date.now();
    learnCapacity(this.upstream, backend, headers, now);
    const decision = throttleCooldown(status, headers, this.upstream.throttle, now);
    if (decision) {
      attempt.settle('neutral');
      const extended = this.coolDown(backend, decision, now);
      attempt.trace?.cooldown(decision, extended);
      attempt.report('throttled', status);
      if (this.forward.replayable && !this.clientGone) {
        const next = this.pick(now);
        if (next) {
          attempt.discard();
          this.dispatchTo(next, false);
          return;
        }
        if (!this.anyReady(now)) {
          attempt.discard();
          this.noBackend(now);
          return;
        }
      }
      if (!this.clientGone) this.context.observer.throttlePassedThrough(this.upstream, backend, status);
    } else {
      const breaker = backend.state.breaker;
      const failed = breaker?.policy.statuses.has(status);
      attempt.settle(failed ? 'failure' : 'success');
      const retry = this.upstream.resilience.retry;
      const retryable = retry?.statuses.has(status);
      attempt.report(failed || retryable ? 'error' : 'ok', status);
      if (retryable && this.retryAfterFailure(attempt, 'status', status, `status ${status}`)) return;
    }
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
    if (this.deadlinePassed) {
      // Cut by the request deadline, already answered: the backend was too slow.
      attempt.settle('failure');
      return;
    }
    const failure = this.failed(attempt.backend, error);
    const code = failure.problem;
    attempt.settle(code === 'payload-too-large' ? 'neutral' : 'failure');
    attempt.report(failure.timedOut ? 'timeout' : 'error', 0);
    if (this.sink.started) {
      this.sink.abort(error);
      return;
    }
    if (code !== 'payload-too-large' && this.retryAfterFailure(attempt, failure.kind, 0, code)) return;
    if (attempt.deadlineBound && failure.kind === 'timeout') {
      this.#answerDeadline();
      return;
    }
    this.sink.problem(code, `${this.upstream.name}: ${error.message}`, { extensions: { upstream: this.upstream.name } });
  }

  get idempotent(): boolean {
    return (this.#idempotent ??= isIdempotent(this.forward.method, this.forward.headers));
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
        if (at >= this.deadlineAt) {
          this.#answerDeadline();
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
    if (block.kind === 'full') {
      this.#enqueue(block.backend);
      return;
    }
    if (this.fallBack()) return;
    answerPoolBlocked(this.sink, this.route, this.upstream, block, now, this.context.observer);
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
    const entry = backend.state.queue?.add(this);
    if (entry === undefined) {
      this.context.observer.concurrencyRejected(this.upstream, backend, 'queue-full');
      if (!this.fallBack()) sendConcurrencyLimited(this.sink, this.upstream, 'queue-full');
      return;
    }
    this.#waitingOn = backend;
    this.#queueEntry = entry;
  }

  /** QueueWaiter: a slot freed on the backend this request waits for. */
  wake(): boolean {
    const backend = this.#waitingOn!;
    this.#waitingOn = undefined;
    this.#queueEntry = undefined;
    if (this.clientGone) return false;
    const now = Date.now();
    if ((this.tried & (1 << backend.index)) === 0 && !backend.state.isCooling(now) && backend.state.admitsWaiter()) {
      this.dispatchTo(backend, false);
      return true;
    }
    const next = this.pick(now);
    if (next) {
      this.dispatchTo(next, false);
      return next === backend;
    }
    this.noBackend(now);
    return false;
  }

  /** QueueWaiter: maxWait passed. */
  expire(): void {
    const backend = this.#waitingOn;
    this.#waitingOn = undefined;
    this.#queueEntry = undefined;
    if (this.clientGone) return;
    this.context.observer.concurrencyRejected(this.upstream, backend, 'wait-expired');
    if (!this.fallBack()) sendConcurrencyLimited(this.sink, this.upstream, 'wait-expired');
  }

  #onDeadline(): void {
    this.#deadlineTimer = undefined;
    if (this.sink.started || this.clientGone) return;
    this.deadlinePassed = true;
    this.#cancelWaits();
    const attempt = this.current;
    if (attempt !== undefined && !attempt.released) {
      this.context.observer.attempt(this.upstream, attempt.backend, 'timeout', 0, attempt.elapsed());
      attempt.abort(new Error('request deadline passed'));
    }
    this.#answerDeadline();
  }

  #answerDeadline(): void {
    this.sink.problem('deadline-exceeded', `${this.upstream.name}: no response within the request deadline`, {
      extensions: { upstream: this.upstream.name },
    });
  }

  #clearDeadline(): void {
    if (this.#deadlineTimer === undefined) return;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  #cancelWaits(): void {
    if (this.#queueEntry !== undefined && this.#waitingOn !== undefined) this.#waitingOn.state.queue?.cancel(this.#queueEntry);
    this.#queueEntry = undefined;
    this.#waitingOn = undefined;
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer.timer);
      this.#retryTimer.backend.state.retriesInFlight--;
      this.#retryTimer = undefined;
    }
  }
}
