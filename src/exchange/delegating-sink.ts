// Sinks that wrap another sink and pass everything through: the base class, response header
// rewrites, and a sink that reports when the answer starts (the request deadline stops then).
// Mirroring records what the client got through a subclass of its own (pipeline/mirror.ts).

import type { IncomingHttpHeaders } from 'node:http';
import type { ProblemCode } from '../core/problems.js';
import type { ProblemOptions, ResponseSink } from './sink.js';
import { applyHeaderOps, type HeaderOps } from '../routing/rewrite.js';

export class DelegatingSink implements ResponseSink {
  constructor(readonly inner: ResponseSink) {}
  get started(): boolean {
    return this.inner.started;
  }
  onGone(listener: () => void): void {
    this.inner.onGone(listener);
  }
  start(status: number, headers: IncomingHttpHeaders): void {
    this.inner.start(status, headers);
  }
  write(chunk: Buffer): boolean {
    return this.inner.write(chunk);
  }
  onDrain(listener: () => void): void {
    this.inner.onDrain(listener);
  }
  end(): void {
    this.inner.end();
  }
  problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    this.inner.problem(code, detail, options);
  }
  abort(error: Error): void {
    this.inner.abort(error);
  }
  fallingBack(): void {
    this.inner.fallingBack?.();
  }
  gatewayAnswer(): void {
    this.inner.gatewayAnswer?.();
  }
}

/** Applies the route's response header rewrites to upstream answers (not to gateway problems). */
export class HeaderRewriteSink extends DelegatingSink {
  constructor(
    inner: ResponseSink,
    readonly ops: HeaderOps,
  ) {
    super(inner);
  }
  override start(status: number, headers: IncomingHttpHeaders): void {
    applyHeaderOps(headers, this.ops);
    super.start(status, headers);
  }
}

/** Calls `onAnswer` whenever the answer starts, ends or fails (the first call is what counts). */
export class AnswerWatchSink extends DelegatingSink {
  constructor(
    inner: ResponseSink,
    private readonly onAnswer: () => void,
  ) {
    super(inner);
  }
  override start(status: number, headers: IncomingHttpHeaders): void {
    this.onAnswer();
    super.start(status, headers);
  }
  override end(): void {
    this.onAnswer();
    super.end();
  }
  override problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    this.onAnswer();
    super.problem(code, detail, options);
  }
  override abort(error: Error): void {
    this.onAnswer();
    super.abort(error);
  }
}
