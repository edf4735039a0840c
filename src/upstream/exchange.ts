// One client request's trip through an upstream pool: pick a backend, dispatch, and on a
// throttle answer (429, or 503 with a retry hint) cool that backend down and go straight to the
// next one — no sleep. The decision is made on the status line and headers, before any byte
// reaches the client; once the response streams, there is no retry.

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../runtime/snapshot.js';
import { buildResponseHeaders } from '../server/forward-headers.js';
import type { ProblemCode } from '../server/problems.js';
import { isTlsError } from './backend-tls.js';
import { throttleCooldown } from './cooldown.js';
import { applyHeaderEdit } from './header-edit.js';
import type { AttemptOutcome, ProxyObserver } from './observer.js';
import { isReady, pickBackend, soonestReady } from './select.js';
import type { ResponseSink } from './sink.js';

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
}

type Controller = Dispatcher.DispatchController;

export class ProxyExchange {
  tried = 0;
  attempts = 0;
  clientGone = false;
  current: Attempt | undefined;
  readonly startedAt: number;

  constructor(
    readonly sink: ResponseSink,
    readonly route: CompiledRoute,
    readonly upstream: CompiledUpstream,
    readonly forward: ForwardRequest,
    readonly context: ExchangeContext,
  ) {
    this.startedAt = performance.now();
  }

  start(): void {
    this.sink.onGone(() => {
      this.clientGone = true;
      this.current?.abort();
    });
    const backend = this.pick(Date.now());
    if (backend) this.dispatchTo(backend);
    else this.sendExhausted(Date.now());
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

  dispatchTo(backend: CompiledBackend): void {
    this.attempts++;
    this.tried |= 1 << backend.index;
    const { forward, upstream } = this;
    const host = upstream.hostHeader;
    const hostValue = host === 'backend' ? backend.authority : host === 'preserve' ? forward.clientHost : host;
    if (hostValue !== undefined) forward.headers.host = hostValue;
    const attempt = new Attempt(this, backend);
    this.current = attempt;
    backend.state.inFlight++;
    backend.state.requests++;
    const options: Dispatcher.DispatchOptions & { servername?: string } = {
      path: backend.basePath + forward.path,
      method: forward.method as Dispatcher.HttpMethod,
      headers: backend.headerEdit ? applyHeaderEdit(forward.headers, backend.headerEdit) : forward.headers,
      // undici accepts async iterables as bodies; its types only list Readable.
      body: forward.body as Buffer | Readable | null,
      headersTimeout: upstream.timeouts.headers,
      bodyTimeout: upstream.timeouts.idle,
    };
    // SNI comes from the backend, never from a preserved or literal Host header.
    if (backend.tls?.servername) options.servername = backend.tls.servername;
    backend.dispatcher.dispatch(options, attempt);
  }

  /** Status line and headers are in: throttle → next backend at once; otherwise stream to the client. */
  onResponseStart(attempt: Attempt, status: number, headers: Record<string, string | string[] | undefined>): void {
    const { backend } = attempt;
    const now = Date.now();
    const decision = throttleCooldown(status, headers, this.upstream.throttle, now);
    if (decision) {
      backend.state.throttled++;
      const extended = backend.state.coolDownUntil(decision.until, decision.source, decision.value, now);
      this.context.observer.cooldown(this.upstream, backend, decision, extended);
      this.context.observer.attempt(this.upstream, backend, 'throttled', status, attempt.elapsed());
      if (this.forward.replayable && !this.clientGone) {
        const next = this.pick(now);
        if (next) {
          attempt.discard();
          this.dispatchTo(next);
          return;
        }
        if (!this.upstream.backends.some((b) => isReady(b, now))) {
          attempt.discard();
          this.sendExhausted(now);
          return;
        }
      }
    } else {
      this.context.observer.attempt(this.upstream, backend, 'ok', status, attempt.elapsed());
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
    if (this.clientGone) return;
    const { backend } = attempt;
    const code = classifyError(error);
    backend.state.errors++;
    if (code === 'upstream-tls-error') this.context.observer.tlsError(this.upstream, backend, error.code ?? 'TLS', error.message);
    this.context.observer.attempt(this.upstream, backend, code.endsWith('timeout') ? 'timeout' : 'error', 0, attempt.elapsed());
    // Place for failure retries (502/503/504, timeouts, connect errors) once breakers exist.
    if (this.sink.started) {
      this.sink.abort(error);
      return;
    }
    this.sink.problem(code, `${this.upstream.name}: ${error.message}`, { extensions: { upstream: this.upstream.name } });
  }

  sendExhausted(now: number): void {
    const soonest = soonestReady(this.upstream.backends, now);
    const waitMs = Math.max(1, Math.ceil(soonest - now));
    this.context.observer.poolExhausted(this.route, waitMs);
    sendPoolExhausted(this.sink, this.upstream, waitMs);
  }
}

/** The gateway's own 429: no backend of the pool is ready; come back when the soonest one is. */
export function sendPoolExhausted(sink: ResponseSink, upstream: CompiledUpstream, waitMs: number): void {
  sink.problem('all-backends-throttled', `every backend of upstream "${upstream.name}" is cooling down`, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))), 'retry-after-ms': String(waitMs) },
    extensions: { upstream: upstream.name, retryAfterMs: waitMs },
  });
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
  readonly startedAt = performance.now();
  #resume: (() => void) | undefined;

  constructor(
    readonly exchange: ProxyExchange,
    readonly backend: CompiledBackend,
  ) {}

  elapsed(): number {
    return performance.now() - this.startedAt;
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
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.release();
    if (this.discarding) return;
    this.exchange.onAttemptError(this, error);
  }

  /** Keep reading (and dropping) a throttled response so its connection stays reusable. */
  discard(): void {
    this.discarding = true;
  }

  abort(): void {
    const controller = this.controller;
    if (controller && !controller.aborted) controller.abort(new Error('client closed the connection'));
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.backend.state.inFlight--;
  }
}

export type { AttemptOutcome };
