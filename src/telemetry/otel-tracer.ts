// Spans of one request: a SERVER span from arrival to the end of the response, and a CLIENT
// span per upstream attempt (attempt number, backend, outcome, retry reason, the cooldown it set
// and the header that said so). Each attempt's context goes to its backend as W3C traceparent /
// tracestate; an incoming traceparent is continued. Context is passed explicitly (no async
// context manager on the hot path). Loaded only when tracing is on (see tracing.ts).

import type { IncomingMessage } from 'node:http';
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type ContextManager,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import type { AttemptOutcome, CooldownDecision } from '../core/events.js';
import type { AttemptTrace } from '../exchange/request-scope.js';
import { backendLabel } from './labels.js';
import { parseTraceparent, randomHex, type IncomingTrace, type PreSampler } from './pre-sampler.js';
import type { RequestTracer, ServerTrace } from './trace-types.js';

/** The propagation half of @opentelemetry/api's PropagationAPI (or any TextMapPropagator). */
export interface Propagation {
  inject(context: Context, carrier: Record<string, string | string[]>, setter?: typeof defaultTextMapSetter): void;
  extract(context: Context, carrier: IncomingMessage['headers'], getter?: typeof defaultTextMapGetter): Context;
  /** The header names the propagators read (W3C: traceparent, tracestate, baggage). */
  fields?(): string[];
}

export const ATTR = {
  attempt: 'spillway.attempt',
  upstream: 'spillway.upstream',
  backend: 'spillway.backend',
  priority: 'spillway.backend.priority',
  outcome: 'spillway.outcome',
  retryReason: 'spillway.retry.reason',
  cooldownSet: 'spillway.cooldown.set',
  cooldownSource: 'spillway.cooldown.source',
  cooldownValue: 'spillway.cooldown.value',
  cooldownUntil: 'spillway.cooldown.until',
  cooldownMs: 'spillway.cooldown.ms',
  route: 'spillway.route',
  requestId: 'spillway.request_id',
  attempts: 'spillway.attempts',
} as const;

class AttemptSpan implements AttemptTrace {
  #outcome: AttemptOutcome | undefined;
  #ended = false;

  constructor(
    readonly span: Span,
    readonly request: ServerRequestTrace,
  ) {}

  outcome(outcome: AttemptOutcome, status: number): void {
    this.#outcome = outcome;
    this.request.lastOutcome = outcome;
    this.span.setAttribute(ATTR.outcome, outcome);
    if (status > 0) this.span.setAttribute('http.response.status_code', status);
    if (outcome === 'error' || outcome === 'timeout') this.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  }

  retried(reason: string): void {
    this.request.retryReason = reason;
  }

  cooldown(decision: CooldownDecision, extended: boolean): void {
    this.span.setAttributes({
      [ATTR.cooldownSet]: extended,
      [ATTR.cooldownSource]: decision.source,
      [ATTR.cooldownValue]: decision.value,
      [ATTR.cooldownUntil]: new Date(decision.until).toISOString(),
      [ATTR.cooldownMs]: decision.delayMs,
    });
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#outcome === undefined) {
      this.span.setAttribute(ATTR.outcome, 'aborted');
      this.request.lastOutcome = 'aborted';
    }
    this.span.end();
  }
}

/** The attempt of a request that is not recorded: nothing to note. */
const UNRECORDED_ATTEMPT: AttemptTrace = {
  outcome() {},
  retried() {},
  cooldown() {},
  end() {},
};

class ServerRequestTrace implements ServerTrace {
  readonly span: Span;
  readonly context: Context;
  lastOutcome: AttemptOutcome | undefined;
  /** Why the next attempt is a retry (set by the failed attempt), else its outcome says. */
  retryReason: string | undefined;

  constructor(
    readonly tracer: Tracer,
    readonly propagation: Propagation,
    readonly method: string,
    parent: Context,
    path: string,
    requestId: string,
  ) {
    // Attributes are set after the sampler has decided: the SDK sanitises attributes given to
    // startSpan() even for a span it will not record.
    this.span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
    this.recording = this.span.isRecording();
    if (this.recording) this.span.setAttributes({ 'http.request.method': method, 'url.path': path, [ATTR.requestId]: requestId });
    this.context = trace.setSpan(parent, this.span);
  }

  readonly recording: boolean;

  attempt(
    upstream: CompiledUpstream,
    backend: CompiledBackend,
    attemptNumber: number,
    headers: Record<string, string | string[]>,
  ): AttemptTrace {
    // A request that is not recorded gets no attempt spans: its backends receive the server
    // span's context (sampled flag off), which is all an unrecorded trace needs.
    if (!this.recording) {
      this.propagation.inject(this.context, headers, defaultTextMapSetter);
      return UNRECORDED_ATTEMPT;
    }
    const span = this.tracer.startSpan(`${this.method} ${upstream.name}`, { kind: SpanKind.CLIENT }, this.context);
    span.setAttributes({
      'http.request.method': this.method,
      'server.address': backend.authority,
      [ATTR.attempt]: attemptNumber,
      [ATTR.upstream]: upstream.name,
      [ATTR.backend]: backendLabel(backend),
      [ATTR.priority]: backend.priority,
    });
    const retryReason = this.retryReason ?? (attemptNumber > 1 ? this.lastOutcome : undefined);
    if (retryReason !== undefined) span.setAttribute(ATTR.retryReason, retryReason);
    this.retryReason = undefined;
    this.propagation.inject(trace.setSpan(this.context, span), headers, defaultTextMapSetter);
    return new AttemptSpan(span, this);
  }

  finish(route: CompiledRoute | undefined, status: number, attempts: number, aborted: boolean): void {
    const span = this.span;
    if (!this.recording) {
      span.end();
      return;
    }
    if (route) span.updateName(`${this.method} ${route.name}`);
    span.setAttributes({
      ...(route ? { 'http.route': route.match.path.source, [ATTR.route]: route.name } : {}),
      [ATTR.attempts]: attempts,
      ...(status > 0 ? { 'http.response.status_code': status } : {}),
    });
    if (status >= 500 || status === 0 || aborted)
      span.setStatus({ code: SpanStatusCode.ERROR, ...(aborted ? { message: 'response not completed' } : {}) });
    span.end();
  }
}

/**
 * The SDK's context manager when spillway runs it: context travels explicitly (server span →
 * attempt spans), so the active context is always the root one and nothing follows callbacks or
 * promises (the SDK's default, AsyncLocalStorage, would for every one of them).
 */
export function explicitContextManager(): ContextManager {
  return {
    active: () => ROOT_CONTEXT,
    with: (_context, fn, thisArg, ...args) => fn.call(thisArg, ...args),
    bind: (_context, target) => target,
    enable() {
      return this;
    },
    disable() {
      return this;
    },
  };
}

/**
 * A request the pre-sampler will not record: no span and no SDK call. Its backends still get the
 * trace (a new span id, sampled flag off): the caller's trace id, or a new one made once.
 */
class UnsampledTrace implements ServerTrace {
  #traceId: string | undefined;

  constructor(
    incoming: IncomingTrace | undefined,
    readonly tracestate: string | string[] | undefined,
  ) {
    this.#traceId = incoming?.traceId;
  }

  attempt(
    _upstream: CompiledUpstream,
    _backend: CompiledBackend,
    _attemptNumber: number,
    headers: Record<string, string | string[]>,
  ): AttemptTrace {
    this.#traceId ??= randomHex(16);
    headers.traceparent = `00-${this.#traceId}-${randomHex(8)}-00`;
    if (this.tracestate !== undefined) headers.tracestate = this.tracestate;
    return UNRECORDED_ATTEMPT;
  }

  finish(): void {}
}

export function createRequestTracer(tracer: Tracer, propagation: Propagation, preSample?: PreSampler): RequestTracer {
  // A request without any of the propagators' headers starts a new trace: nothing to extract.
  const fields = propagation.fields?.();
  const carriesContext = (headers: IncomingMessage['headers']): boolean =>
    fields === undefined || fields.some((field) => headers[field] !== undefined);
  return {
    start(req, requestId) {
      if (preSample !== undefined) {
        const incoming = parseTraceparent(req.headers.traceparent);
        if (!preSample(incoming)) return new UnsampledTrace(incoming, incoming ? req.headers.tracestate : undefined);
      }
      const parent = carriesContext(req.headers) ? propagation.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter) : ROOT_CONTEXT;
      const url = req.url ?? '/';
      const queryAt = url.indexOf('?');
      return new ServerRequestTrace(
        tracer,
        propagation,
        req.method ?? 'GET',
        parent,
        queryAt === -1 ? url : url.slice(0, queryAt),
        requestId,
      );
    },
  };
}
