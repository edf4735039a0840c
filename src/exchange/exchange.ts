// One client request's trip through an upstream pool: pick a backend, dispatch, and on a
// throttle answer (429, or 503 with a retry hint) cool that backend down and go straight to the
// next one — no sleep. The decision is made on the status line and headers, before any byte
// reaches the client; once the response streams, there is no retry.
// Resilience (issue 4): every attempt reports to its backend's breaker; failures may be retried
// (src/resilience/retry.ts) within the retry budget and the request deadline; when every backend
// is full the request waits in a bounded queue; when none can serve, the route's fallback or a
// problem answer with Retry-After.

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import { buildResponseHeaders } from './forward-headers.js';
import type { ProblemCode } from '../core/problems.js';
import { isTlsError } from '../state/backend-tls.js';
import type { BreakerVerdict } from '../resilience/breaker.js';
import type { QueueEntry, QueueWaiter } from '../resilience/concurrency.js';
import { backoffDelay, budgetAllows, failureKind, isIdempotent, retryAllowed, type FailureKind } from '../resilience/retry.js';
import { throttleCooldown } from '../resilience/cooldown.js';
import { applyHeaderEdit } from '../routing/header-edit.js';
import type { AttemptOutcome } from '../core/events.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { AttemptTrace, RequestScope } from './request-scope.js';
import { isReady, pickBackend, poolBlock, type PoolBlock } from '../balance/select.js';
import type { ProblemOptions, ResponseSink } from './sink.js';
import type { IncomingHttpHeaders } from 'node:http';

export interface ExchangeContext {
  observer: ProxyObserver;
  random: () => number;
}

export interface ForwardRequest {
  method: string;
  /** Path and query as the backend should see them, before the backend's own base path. */
  path: string;
  headers: Record<string, string | string[]>;
  /** Whole body (replayable), a one-shot stream, or null. */
  body: Buffer | AsyncIterable<Buffer> | null;
  replayable: boolean;
  /** The Host value the client sent, for hostHeader: preserve. */
  clientHost: string | undefined;
  /** Telemetry of the client request (absent when nothing follows it). */
  scope?: RequestScope | undefined;
}

type Controller = Dispatcher.DispatchController;

export class ProxyExchange implements QueueWaiter {
  tried = 0;
  attempts = 0;
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
    readonly upstream: CompiledUpstream,
    readonly forward: ForwardRequest,
    readonly context: ExchangeContext,
    /** True for a route fallback's (or a mirror's) exchange: the route's fallback is not used. */
    readonly noFallback = false,
  ) {
    this.startedAt = performance.now();
    // With a deadline, the sink tells us when the answer starts so the deadline timer stops.
    this.sink = upstream.resilience.retry === undefined ? sink : new DeadlineSink(sink, () => this.#clearDeadline());
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

  pick(now: number): CompiledBackend | undefined {
    if (this.attempts >= this.upstream.maxAttempts) return undefined;
    return pickBackend({
      backends: this.upstream.backends,
      balance: this.upstream.balance,
      now,
      tried: this.tried,
      random: this.context.random,
      cursor: this.upstream.cursor,
    });
  }

  dispatchTo(backend: CompiledBackend, isRetry: boolean): void {
    this.attempts++;
    this.tried |= 1 << backend.index;
    const { forward, upstream } = this;
    const host = upstream.hostHeader;
    const hostValue = host === 'backend' ? backend.authority : host === 'preserve' ? forward.clientHost : host;
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
    state.inFlight++;
    state.requests++;
    let headersTimeout = upstream.timeouts.headers;
    if (this.deadlineAt !== 0) {
      const left = this.deadlineAt - Date.now();
      if (left < headersTimeout) {
        headersTimeout = Math.max(1, left);
        attempt.deadlineBound = true;
      }
    }
    const options: Dispatcher.DispatchOptions & { servername?: string } = {
      path: backend.basePath + forward.path,
      method: forward.method as Dispatcher.HttpMethod,
      headers: backend.headerEdit ? applyHeaderEdit(forward.headers, backend.headerEdit) : forward.headers,
      // undici accepts async iterables as bodies; its types only list Readable.
      body: forward.body as Buffer | Readable | null,
      headersTimeout,
      bodyTimeout: upstream.timeouts.idle,
    };
    // SNI comes from the backend, never from a preserved or literal Host header.
    if (backend.tls?.servername) options.servername = backend.tls.servername;
    backend.dispatcher.dispatch(options, attempt);
  }

  /** Status line and headers are in: throttle → next backend at once; retryable failure → retry; otherwise stream to the client. */
  onResponseStart(attempt: Attempt, status: number, headers: Record<string, string | string[] | undefined>): void {
    const { backend } = attempt;
    const now = Date.now();
    const decision = throttleCooldown(status, headers, this.upstream.throttle, now);
    if (decision) {
      attempt.settle('neutral');
      backend.state.throttled++;
      const extended = backend.state.coolDownUntil(decision.until, decision.source, decision.value, now);
      this.context.observer.cooldown(this.upstream, backend, decision, extended);
      attempt.trace?.cooldown(decision, extended);
      attempt.report('throttled', status);
      if (this.forward.replayable && !this.clientGone) {
        const next = this.pick(now);
        if (next) {
          attempt.discard();
          this.dispatchTo(next, false);
          return;
        }
        if (!this.upstream.backends.some((b) => isReady(b, now))) {
          attempt.discard();
          this.noBackend(now);
          return;
        }
      }
      if (!this.clientGone) this.context.observer.throttlePassedThrough(this.upstream, backend, status);
    } else {
      const breaker = backend.state.breaker;
      const failed = breaker !== undefined && breaker.policy.statuses.has(status);
      attempt.settle(failed ? 'failure' : 'success');
      const retry = this.upstream.resilience.retry;
      const retryable = retry !== undefined && retry.statuses.has(status);
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
    const { backend } = attempt;
    const code = classifyError(error);
    const kind = failureKind(error.code);
    attempt.settle(code === 'payload-too-large' ? 'neutral' : 'failure');
    backend.state.errors++;
    if (code === 'upstream-tls-error') this.context.observer.tlsError(this.upstream, backend, error.code ?? 'TLS', error.message);
    attempt.report(kind === 'timeout' || code.endsWith('timeout') ? 'timeout' : 'error', 0);
    if (this.sink.started) {
      this.sink.abort(error);
      return;
    }
    if (code !== 'payload-too-large' && this.retryAfterFailure(attempt, kind, 0, code)) return;
    if (attempt.deadlineBound && kind === 'timeout') {
      this.sink.problem('deadline-exceeded', `${this.upstream.name}: no response within the request deadline`, { extensions: { upstream: this.upstream.name } });
      return;
    }
    this.sink.problem(code, `${this.upstream.name}: ${error.message}`, { extensions: { upstream: this.upstream.name } });
  }

  get idempotent(): boolean {
    return (this.#idempotent ??= isIdempotent(this.forward.method, this.forward.headers));
  }

  /**
   * Sends the request again after a failure when that is safe and allowed: a different backend at
   * once, or — in a single-backend pool — the same one after a jittered backoff. Returns false
   * when the failure must be answered instead.
   */
  retryAfterFailure(attempt: Attempt, kind: FailureKind, status: number, reason: string): boolean {
    if (!this.forward.replayable || this.clientGone || this.sink.started) return false;
    const policy = this.upstream.resilience.retry;
    const now = Date.now();
    if (policy === undefined) {
      // Without a retry block only the always-safe case: the backend never got the request.
      if (kind !== 'connect') return false;
      const next = this.pick(now);
      if (!next) return false;
      this.context.observer.retry(this.upstream, attempt.backend, reason);
      attempt.trace?.retried(reason);
      this.dispatchTo(next, false);
      return true;
    }
    if (this.retries >= policy.maxRetries || !retryAllowed(policy, kind, status, this.idempotent) || now >= this.deadlineAt) return false;
    let next = this.pick(now);
    let delay = 0;
    if (!next) {
      if (this.upstream.backends.length !== 1 || !isReady(attempt.backend, now)) return false;
      next = attempt.backend;
      delay = backoffDelay(policy, this.retries, this.context.random);
      if (now + delay >= this.deadlineAt) return false;
    }
    // A refused connection cost the backend nothing: only retries it may have seen use the budget.
    if (kind !== 'connect' && !budgetAllows(policy, this.upstream.backends)) return false;
    this.retries++;
    this.context.observer.retry(this.upstream, attempt.backend, reason);
    attempt.trace?.retried(reason);
    attempt.discard();
    if (delay === 0) {
      this.dispatchTo(next, true);
      return true;
    }
    // The waiting retry counts against the budget too.
    const target = next;
    target.state.retriesInFlight++;
    this.#retryTimer = {
      backend: target,
      timer: setTimeout(() => {
        this.#retryTimer = undefined;
        target.state.retriesInFlight--;
        if (this.clientGone) return;
        const at = Date.now();
        if (at >= this.deadlineAt) {
          this.sink.problem('deadline-exceeded', `${this.upstream.name}: no response within the request deadline`, { extensions: { upstream: this.upstream.name } });
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

  /** Kept for callers of the core API: answers as if no backend were ready. */
  sendExhausted(now: number): void {
    this.noBackend(now);
  }

  /** The route's fallback, when it has one and this is not already the fallback. */
  fallBack(): boolean {
    const fallback = this.route.fallback;
    if (fallback === undefined || this.noFallback) return false;
    if (fallback.kind === 'static') {
      sendStaticFallback(this.sink, fallback.status, fallback.headers, fallback.body);
      return true;
    }
    if (this.attempts > 0 && !this.forward.replayable) return false;
    new ProxyExchange(this.sink, this.route, fallback.upstream, this.forward, this.context, true).start();
    return true;
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
    this.sink.problem('deadline-exceeded', `${this.upstream.name}: no response within the request deadline`, { extensions: { upstream: this.upstream.name } });
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

/** One `skipped_cooling` attempt per backend this request passes over because it is cooling down. */
export function reportSkippedCooling(upstream: CompiledUpstream, now: number, observer: ProxyObserver): void {
  for (const backend of upstream.backends) {
    if (backend.state.cooldownUntil > now) observer.attempt(upstream, backend, 'skipped_cooling', 0, 0);
  }
}

/** The gateway's own answer when no backend can take the request: 429 (all cooling) or 503 (broken/unhealthy). */
export function answerPoolBlocked(sink: ResponseSink, route: CompiledRoute, upstream: CompiledUpstream, block: PoolBlock<CompiledBackend>, now: number, observer: ProxyObserver): void {
  if (block.kind === 'full') {
    sendConcurrencyLimited(sink, upstream, 'queue-full');
    return;
  }
  const waitMs = Math.max(1, Math.ceil(block.readyAt - now));
  if (block.kind === 'throttled') {
    observer.poolExhausted(route, waitMs, upstream);
    sendPoolExhausted(sink, upstream, waitMs);
    return;
  }
  for (const backend of upstream.backends) {
    if (backend.state.breaker !== undefined && !backend.state.breaker.canPass()) observer.attempt(upstream, backend, 'breaker_open', 0, 0);
  }
  sink.problem('all-backends-unavailable', `no backend of upstream "${upstream.name}" is available (breakers open or health checks failing)`, {
    headers: retryAfterHeaders(waitMs),
    extensions: { upstream: upstream.name, retryAfterMs: waitMs },
  });
}

/** The gateway's own 429: no backend of the pool is ready; come back when the soonest one is. */
export function sendPoolExhausted(sink: ResponseSink, upstream: CompiledUpstream, waitMs: number): void {
  sink.problem('all-backends-throttled', `every backend of upstream "${upstream.name}" is cooling down`, {
    headers: retryAfterHeaders(waitMs),
    extensions: { upstream: upstream.name, retryAfterMs: waitMs },
  });
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

export function sendStaticFallback(sink: ResponseSink, status: number, headers: Readonly<Record<string, string>>, body: string): void {
  const bytes = Buffer.from(body);
  sink.start(status, { 'content-type': 'text/plain; charset=utf-8', ...headers, 'content-length': String(bytes.length) });
  if (bytes.length > 0) sink.write(bytes);
  sink.end();
}

function retryAfterHeaders(waitMs: number): Record<string, string> {
  return { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))), 'retry-after-ms': String(waitMs) };
}

export function classifyError(error: Error & { code?: string; cause?: unknown }): ProblemCode {
  switch (error.code) {
    case 'SPILLWAY_BODY_TOO_LARGE':
      return 'payload-too-large';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'upstream-connect-timeout';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'upstream-headers-timeout';
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
      return 'upstream-unreachable';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'upstream-connection-error';
    default:
      return isTlsError(error) ? 'upstream-tls-error' : 'upstream-error';
  }
}

/** The undici dispatch handler for one attempt on one backend. */
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
    readonly exchange: ProxyExchange,
    readonly backend: CompiledBackend,
  ) {}

  elapsed(): number {
    return performance.now() - this.startedAt;
  }

  /** Reports this attempt's outcome to the observer (metrics, logs) and its span. */
  report(outcome: AttemptOutcome, status: number): void {
    this.exchange.context.observer.attempt(this.exchange.upstream, this.backend, outcome, status, this.elapsed());
    this.trace?.outcome(outcome, status);
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.exchange.clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(_controller: Controller, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return;
    this.exchange.onResponseStart(this, status, headers);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.forwarding) return;
    const { sink } = this.exchange;
    if (!sink.write(chunk)) {
      controller.pause();
      this.#resume ??= () => this.controller?.resume();
      sink.onDrain(this.#resume);
    }
  }

  onResponseEnd(): void {
    this.release();
    if (this.forwarding) this.exchange.sink.end();
    this.trace?.end();
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.release(false);
    if (!this.discarding) this.exchange.onAttemptError(this, error);
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

export type { AttemptOutcome };

/** Passes everything on to the real sink and reports once the answer has started (deadline over). */
class DeadlineSink implements ResponseSink {
  constructor(
    readonly inner: ResponseSink,
    private readonly onAnswer: () => void,
  ) {}

  get started(): boolean {
    return this.inner.started;
  }

  onGone(listener: () => void): void {
    this.inner.onGone(listener);
  }

  start(status: number, headers: IncomingHttpHeaders): void {
    this.onAnswer();
    this.inner.start(status, headers);
  }

  write(chunk: Buffer): boolean {
    return this.inner.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.inner.onDrain(listener);
  }

  end(): void {
    this.onAnswer();
    this.inner.end();
  }

  problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    this.onAnswer();
    this.inner.problem(code, detail, options);
  }

  abort(error: Error): void {
    this.onAnswer();
    this.inner.abort(error);
  }
}
