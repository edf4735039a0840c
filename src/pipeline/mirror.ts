// Mirroring: a copy of a share of a route's traffic goes to a shadow upstream, fire-and-forget.
// The client's response never waits for the shadow nor changes because of it; the shadow has its
// own concurrency cap, so a slow shadow only ever costs skipped copies. When both sides have
// answered, the pair is compared (status, latencies, optionally JSON bodies) and reported
// through context.observer.mirrorCompared and the route's counters.

import type { IncomingHttpHeaders } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import type { CompiledMirror, CompiledRoute } from '../snapshot/snapshot.js';
import { PROBLEM_TYPES, type ProblemCode } from '../core/problems.js';
import { ProxyExchange, type ExchangeContext, type ForwardRequest } from '../exchange/exchange.js';
import type { MirrorComparison } from '../core/events.js';
import type { ProblemOptions, ResponseSink } from '../exchange/sink.js';
import { DelegatingSink } from '../exchange/delegating-sink.js';

/** What one side of a pair answered. */
interface SideResult {
  status: number;
  ms: number;
  /** undefined when not captured (compare != body, or past maxBody) */
  body: Buffer | undefined;
  failed: boolean;
}

/** Collects a response's status and (bounded) body. */
class BodyCapture {
  readonly chunks: Buffer[] = [];
  size = 0;
  overflow = false;
  constructor(
    readonly enabled: boolean,
    readonly limit: number,
  ) {}
  add(chunk: Buffer): void {
    if (!this.enabled || this.overflow) return;
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.overflow = true;
      this.chunks.length = 0;
      return;
    }
    this.chunks.push(Buffer.from(chunk));
  }
  result(): Buffer | undefined {
    return this.enabled && !this.overflow ? Buffer.concat(this.chunks, this.size) : undefined;
  }
}

/** Both halves of one mirrored request; compares once both are in. */
export class MirrorPair {
  primary: SideResult | undefined;
  shadow: SideResult | undefined;
  readonly startedAt = performance.now();

  constructor(
    readonly route: CompiledRoute,
    readonly mirror: CompiledMirror,
    readonly context: ExchangeContext,
  ) {}

  settle(side: 'primary' | 'shadow', result: SideResult): void {
    this[side] = result;
    if (!this.primary || !this.shadow) return;
    const stats = this.route.stats.mirror;
    if (this.shadow.failed) {
      stats.shadowErrors++;
      return;
    }
    if (this.primary.failed || this.mirror.compare === 'none') return;
    const bodyEqual = this.mirror.compare === 'body' ? bodiesEqual(this.primary.body, this.shadow.body) : undefined;
    const comparison: MirrorComparison = {
      statusEqual: this.primary.status === this.shadow.status,
      bodyEqual,
      primaryStatus: this.primary.status,
      shadowStatus: this.shadow.status,
      primaryMs: this.primary.ms,
      shadowMs: this.shadow.ms,
    };
    stats.compared++;
    if (comparison.statusEqual) stats.statusEqual++;
    if (bodyEqual !== undefined) {
      stats.bodyCompared++;
      if (bodyEqual) stats.bodyEqual++;
    }
    this.context.observer.mirrorCompared(this.route, comparison);
  }
}

/** JSON bodies compare by value (key order ignored); other bodies byte for byte. */
export function bodiesEqual(a: Buffer | undefined, b: Buffer | undefined): boolean | undefined {
  if (a === undefined || b === undefined) return undefined;
  if (a.equals(b)) return true;
  try {
    return isDeepStrictEqual(JSON.parse(a.toString('utf8')), JSON.parse(b.toString('utf8')));
  } catch {
    return false;
  }
}

/** Wraps the client's sink: passes everything through, and records the primary side. */
export class PrimaryRecordingSink extends DelegatingSink {
  #status = 0;
  readonly #capture: BodyCapture;
  constructor(
    inner: ResponseSink,
    readonly pair: MirrorPair,
  ) {
    super(inner);
    this.#capture = new BodyCapture(pair.mirror.compare === 'body', pair.mirror.maxBody);
  }
  override start(status: number, headers: IncomingHttpHeaders): void {
    this.#status = status;
    super.start(status, headers);
  }
  override write(chunk: Buffer): boolean {
    this.#capture.add(chunk);
    return super.write(chunk);
  }
  override end(): void {
    super.end();
    this.pair.settle('primary', {
      status: this.#status,
      ms: performance.now() - this.pair.startedAt,
      body: this.#capture.result(),
      failed: false,
    });
  }
  override problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    super.problem(code, detail, options);
    this.pair.settle('primary', {
      status: PROBLEM_TYPES[code].status,
      ms: performance.now() - this.pair.startedAt,
      body: undefined,
      failed: false,
    });
  }
  override abort(error: Error): void {
    super.abort(error);
    this.pair.settle('primary', { status: this.#status, ms: performance.now() - this.pair.startedAt, body: undefined, failed: true });
  }
}

/** Receives the shadow's answer; nothing of it reaches the client. */
class ShadowSink implements ResponseSink {
  started = false;
  #status = 0;
  readonly #capture: BodyCapture;
  readonly #startedAt = performance.now();
  #done = false;
  #abandon: (() => void) | undefined;
  readonly #timer: NodeJS.Timeout;
  constructor(
    readonly pair: MirrorPair,
    readonly onDone: () => void,
  ) {
    this.#capture = new BodyCapture(pair.mirror.compare === 'body', pair.mirror.maxBody);
    // Past the mirror timeout the exchange is told its receiver is gone (it aborts the attempt).
    this.#timer = setTimeout(() => {
      this.#abandon?.();
      this.abort();
    }, pair.mirror.timeout);
    this.#timer.unref();
  }
  onGone(listener: () => void): void {
    this.#abandon = listener;
  }
  start(status: number): void {
    this.started = true;
    this.#status = status;
  }
  write(chunk: Buffer): boolean {
    this.#capture.add(chunk);
    return true;
  }
  onDrain(): void {}
  end(): void {
    this.#finish({ status: this.#status, ms: performance.now() - this.#startedAt, body: this.#capture.result(), failed: false });
  }
  problem(): void {
    this.#finish({ status: 0, ms: performance.now() - this.#startedAt, body: undefined, failed: true });
  }
  abort(): void {
    this.#finish({ status: this.#status, ms: performance.now() - this.#startedAt, body: undefined, failed: true });
  }
  #finish(result: SideResult): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.onDone();
    this.pair.settle('shadow', result);
  }
}

/**
 * Decides whether this request is mirrored; if so, returns the sink the primary must write to
 * (recording the client's side) and starts the shadow on the next turn of the event loop.
 * Only whole (buffered) bodies can be mirrored.
 */
export function startMirror(
  route: CompiledRoute,
  mirror: CompiledMirror,
  clientSink: ResponseSink,
  forward: ForwardRequest,
  context: ExchangeContext,
): ResponseSink {
  if (mirror.fraction < 1 && context.random() >= mirror.fraction) return clientSink;
  const stats = route.stats.mirror;
  if (stats.inFlight >= mirror.maxConcurrent || !forward.replayable) {
    stats.skipped++;
    return clientSink;
  }
  stats.inFlight++;
  stats.sent++;
  const pair = new MirrorPair(route, mirror, context);
  // The shadow's attempts are not the client request's: no scope (attempt counts, spans).
  const shadowForward: ForwardRequest = { ...forward, scope: undefined, headers: { ...forward.headers, 'x-spillway-mirror': '1' } };
  setImmediate(() => {
    const sink = new ShadowSink(pair, () => stats.inFlight--);
    try {
      // noFallback: the route's fallback is for the client's request, never for a shadow copy.
      new ProxyExchange(sink, route, mirror.upstream, shadowForward, context, true).start();
    } catch {
      sink.abort();
    }
  });
  return new PrimaryRecordingSink(clientSink, pair);
}
