// One aggregate request: start every root part at once, each through the normal upstream
// exchange (selection, 429 cooldown and failover) into a bounded JSON sink; start `then` parts
// as soon as the part they depend on has answered; answer once every required part is in and
// the optional ones are in or timed out. Whatever is still in flight then is aborted, which
// releases its backend connection.

import type { BlockList } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledRoute, CompiledUpstream } from '../../snapshot/snapshot.js';
import { sendProblem, type ProblemCode } from '../../core/problems.js';
import { ProxyExchange, type ExchangeContext } from '../../exchange/exchange.js';
import { partScope, type RequestScope } from '../../exchange/request-scope.js';
import type { RouteParams } from '../../routing/path-pattern.js';
import type { CompiledAggregate, CompiledPart as CompiledPartOf } from '../../routing/aggregate/compile.js';
import { clientHost, partRequestHeaders } from '../../routing/aggregate/headers.js';
import type { PartOutcome as PartOutcomeOf } from '../../routing/aggregate/merge.js';
import { mergeOutcomes, partFailure, requiredFailureProblem, type PartFailure } from './answer.js';
import { PartSink, type PartResult } from './part-sink.js';
import { selectField } from '../../routing/aggregate/select.js';
import { renderTemplate, type TemplateInput } from '../../routing/aggregate/template.js';

type CompiledPart = CompiledPartOf<CompiledUpstream>;
type PartOutcome = PartOutcomeOf<CompiledUpstream>;

export interface AggregateRequest {
  req: IncomingMessage;
  res: ServerResponse;
  route: CompiledRoute;
  aggregate: CompiledAggregate<CompiledUpstream>;
  params: RouteParams;
  /** "" or "?..." as the client sent it. */
  query: string;
  context: ExchangeContext;
  proto: 'http' | 'https';
  /** `listen.trustedProxies` (forwarding headers of other peers are replaced). */
  trustedProxies?: BlockList | undefined;
  /** Telemetry of the client request: each part's attempts are traced under it. */
  scope?: RequestScope | undefined;
}

/** Response header naming the parts that failed or timed out (the body has them as null). */
export const PARTIAL_HEADER = 'spillway-partial';

interface PartState {
  sink: PartSink | undefined;
  timer: NodeJS.Timeout | undefined;
  startedAt: number;
  outcome: PartOutcome | undefined;
  failure: PartFailure | undefined;
}

export function runAggregate(request: AggregateRequest): void {
  new AggregateRun(request).start();
}

class AggregateRun implements TemplateInput {
  readonly params: RouteParams;
  readonly answers = new Map<string, unknown>();
  readonly #states = new Map<CompiledPart, PartState>();
  #query: URLSearchParams | undefined;
  #pending: number;
  #deadline: NodeJS.Timeout | undefined;
  #done = false;
  readonly #startedAt = performance.now();

  constructor(readonly request: AggregateRequest) {
    this.params = request.params;
    this.#pending = request.aggregate.parts.length;
    for (const part of request.aggregate.parts)
      this.#states.set(part, { sink: undefined, timer: undefined, startedAt: 0, outcome: undefined, failure: undefined });
  }

  query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.request.query);
    return this.#query;
  }

  start(): void {
    const { req, res, aggregate } = this.request;
    // The parts carry no body: drop whatever the client sent so its connection stays usable.
    req.resume();
    res.once('close', () => {
      if (!this.#done) this.#finish();
    });
    this.#deadline = setTimeout(() => this.#onDeadline(), aggregate.timeout);
    for (const part of aggregate.roots) {
      if (this.#done) return;
      this.#startPart(part);
    }
  }

  #startPart(part: CompiledPart): void {
    const { req, route, aggregate, context, proto } = this.request;
    const state = this.#states.get(part)!;
    state.startedAt = performance.now();
    const rendered = renderTemplate(part.path, this);
    if (!rendered.ok) {
      const detail = rendered.fromRequest
        ? `no route param or query parameter "${rendered.missing}" for part "${part.name}"`
        : `"{${rendered.missing}}" is missing or not a string, number or boolean`;
      this.#settle(part, partFailure(rendered.fromRequest ? 'aggregate-input-missing' : 'aggregate-part-skipped', detail, part));
      return;
    }
    const sink = new PartSink(aggregate.maxPartBody, { part: part.name, upstream: part.upstream.name }, (result) =>
      this.#settleSafely(part, result),
    );
    state.sink = sink;
    if (part.timeout !== undefined && part.timeout < aggregate.timeout) {
      state.timer = setTimeout(
        () => sink.cancel({ code: 'aggregate-part-timeout', detail: `no answer within the part timeout (${part.timeout} ms)` }),
        part.timeout,
      );
    }
    route.stats.countUpstream(part.upstream.name);
    const exchange = new ProxyExchange(
      sink,
      route,
      part.upstream,
      {
        method: part.method,
        path: rendered.path,
        headers: partRequestHeaders(req, part.headers, proto, this.request.trustedProxies),
        body: null,
        replayable: true,
        clientHost: clientHost(req),
        scope: this.request.scope && partScope(this.request.scope),
      },
      context,
    );
    try {
      exchange.start();
    } catch (error) {
      sink.problem('upstream-error', `${part.upstream.name}: ${(error as Error).message}`);
    }
  }

  /** Called from inside undici's handler callbacks: whatever happens must not escape into them. */
  #settleSafely(part: CompiledPart, result: PartResult): void {
    try {
      this.#settle(part, result);
    } catch (error) {
      if (!this.#done) this.#answerProblem('internal', `the aggregate failed: ${(error as Error).message}`, { part: part.name });
    }
  }

  #settle(part: CompiledPart, result: PartResult): void {
    const state = this.#states.get(part)!;
    if (state.outcome) return;
    if (state.timer) clearTimeout(state.timer);
    state.timer = undefined;
    let settled = result;
    if (settled.ok) {
      // `then` parts read the whole answer (before select); keep it only when someone will.
      if (part.then.length > 0) this.answers.set(part.name, settled.value);
      if (part.select) {
        const found = selectField(settled.value, part.select);
        settled = found.found
          ? { ok: true, value: found.value }
          : partFailure('aggregate-part-invalid-body', `the answer has no field "${part.select.join('.')}"`, part);
      }
    }
    const outcome: PartOutcome = settled.ok
      ? { part, value: settled.value, problem: undefined }
      : { part, value: null, problem: settled.problem };
    state.outcome = outcome;
    if (!settled.ok) state.failure = settled;
    this.#pending--;
    if (this.#done) return;
    const durationMs = performance.now() - (state.startedAt || this.#startedAt);
    this.request.context.observer.aggregatePart(
      this.request.route,
      part.name,
      settled.ok ? 'ok' : settled.timeout ? 'timeout' : 'error',
      durationMs,
    );

    if (!settled.ok && part.required) {
      this.#answerRequiredFailure(part, settled);
      return;
    }
    for (const next of part.then) {
      if (this.#done) return;
      if (settled.ok) this.#startPart(next);
      else this.#settle(next, partFailure('aggregate-part-skipped', `part "${part.name}" gave no answer`, next));
    }
    if (this.#pending === 0 && !this.#done) this.#answerMerged();
  }

  #onDeadline(): void {
    this.#deadline = undefined;
    if (this.#done) return;
    const { aggregate, route, context } = this.request;
    const missing = aggregate.parts.filter((part) => !this.#states.get(part)!.outcome);
    const missingRequired = missing.filter((part) => part.required);
    if (missingRequired.length > 0) {
      const elapsed = performance.now() - this.#startedAt;
      for (const part of missing) context.observer.aggregatePart(route, part.name, 'timeout', elapsed);
      const names = missingRequired.map((part) => part.name);
      this.#answerProblem(
        'aggregate-timeout',
        `required part${names.length > 1 ? 's' : ''} ${names.map((n) => `"${n}"`).join(', ')} did not answer within ${aggregate.timeout} ms`,
        { parts: names },
      );
      return;
    }
    for (const part of missing) {
      if (this.#done) return;
      const state = this.#states.get(part)!;
      if (state.outcome) continue;
      const detail = `no answer within the aggregate deadline (${aggregate.timeout} ms)`;
      if (state.sink) state.sink.cancel({ code: 'aggregate-part-timeout', detail });
      else this.#settle(part, partFailure('aggregate-part-timeout', detail, part));
    }
  }

  #answerRequiredFailure(part: CompiledPart, failure: PartFailure): void {
    const { code, detail, extensions, headers } = requiredFailureProblem(part, failure);
    this.#answerProblem(code, detail, extensions, headers);
  }

  #answerProblem(code: ProblemCode, detail: string, extensions: Record<string, unknown>, headers?: Record<string, string>): void {
    const { res, route, context } = this.request;
    this.#finish();
    sendProblem(res, code, detail, { extensions, ...(headers ? { headers } : {}) });
    context.observer.aggregateResponse(route, false, res.statusCode);
  }

  #answerMerged(): void {
    const { res, route, aggregate, context } = this.request;
    this.#finish();
    const outcomes = aggregate.parts.map((part) => this.#states.get(part)!.outcome!);
    const merged = mergeOutcomes(aggregate.merge, outcomes);
    if (!merged.ok) {
      const { code, detail, extensions } = merged.problem;
      this.#answerProblem(code, detail, extensions);
      return;
    }
    const { body, failed } = merged;
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (failed.length > 0) headers[PARTIAL_HEADER] = failed.join(', ');
    res.writeHead(200, headers);
    res.end(body);
    context.observer.aggregateResponse(route, failed.length > 0, 200);
  }

  /** No more answers are wanted: stop the clock and abort every part still in flight. */
  #finish(): void {
    this.#done = true;
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = undefined;
    for (const state of this.#states.values()) {
      if (state.timer) clearTimeout(state.timer);
      state.timer = undefined;
      if (state.sink && !state.sink.settled) state.sink.cancel();
    }
  }
}
