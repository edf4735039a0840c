// Sinks that wrap the client's sink: response header rewrites, and recording what the client
// got (status, latency, body copy) for mirror comparisons. Both pass everything through as is.

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
}

/** Applies the route's response header rewrites to upstream answers (not to gateway problems). */
export class HeaderRewriteSink extends DelegatingSink {
  constructor(inner: ResponseSink, readonly ops: HeaderOps) {
    super(inner);
  }
  override start(status: number, headers: IncomingHttpHeaders): void {
    applyHeaderOps(headers, this.ops);
    super.start(status, headers);
  }
}
