// Where one part's upstream exchange delivers its answer: a bounded buffer that yields parsed
// JSON or a problem object. It is a ResponseSink, so the part goes through the exchange exactly
// like a normal request (selection, 429 cooldown and failover, ...). Cancelling it aborts the
// attempt in flight, which also releases that backend connection.

import type { IncomingHttpHeaders } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { problemBody, type ProblemCode, type ProblemDetails } from '../../core/problems.js';
import type { ProblemOptions, ResponseSink } from '../../exchange/sink.js';

export type PartResult =
  | { ok: true; value: unknown }
  /** `headers`: what the gateway would send with this problem on its own (e.g. Retry-After). */
  | { ok: false; problem: ProblemDetails; timeout: boolean; headers?: Record<string, string> | undefined };

export class PartSink implements ResponseSink {
  started = false;
  #status = 0;
  #encoding: string | undefined;
  #chunks: Buffer[] = [];
  #size = 0;
  #settled = false;
  readonly #gone: Array<() => void> = [];

  constructor(
    readonly limit: number,
    readonly extensions: Readonly<Record<string, unknown>>,
    readonly settle: (result: PartResult) => void,
  ) {}

  get settled(): boolean {
    return this.#settled;
  }

  onGone(listener: () => void): void {
    this.#gone.push(listener);
  }

  /** Ends the part with `problem` (e.g. its timeout) and aborts whatever is still in flight. */
  cancel(problem?: { code: ProblemCode; detail: string }): void {
    if (problem) this.#fail(problem.code, problem.detail);
    else this.#settled = true;
    const listeners = this.#gone.splice(0);
    for (const listener of listeners) listener();
  }

  start(status: number, headers: IncomingHttpHeaders): void {
    this.started = true;
    this.#status = status;
    const encoding = headers['content-encoding'];
    this.#encoding = typeof encoding === 'string' && encoding !== 'identity' ? encoding.toLowerCase() : undefined;
    const length = Number(headers['content-length']);
    if (length > this.limit)
      this.cancel({ code: 'aggregate-part-too-large', detail: `the answer declares ${length} bytes, over maxPartBody (${this.limit})` });
  }

  write(chunk: Buffer): boolean {
    if (this.#settled) return true;
    this.#size += chunk.length;
    if (this.#size > this.limit) {
      this.cancel({ code: 'aggregate-part-too-large', detail: `the answer exceeds maxPartBody (${this.limit} bytes)` });
      return true;
    }
    this.#chunks.push(chunk);
    return true;
  }

  onDrain(): void {
    // write() never asks the producer to pause: the buffer is bounded by `limit` instead.
  }

  end(): void {
    if (this.#settled) return;
    if (this.#status < 200 || this.#status >= 300) {
      this.#fail('aggregate-part-status', `the backend answered ${this.#status}`, { upstreamStatus: this.#status });
      return;
    }
    let body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    if (this.#encoding) {
      const decoded = this.#decode(body);
      if (!decoded) return;
      body = decoded;
    }
    if (body.length === 0) {
      // 204, or an empty 200: nothing to merge, which is not an error.
      this.#succeed(null);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch (error) {
      this.#fail('aggregate-part-invalid-body', `the answer is not JSON: ${(error as Error).message}`);
      return;
    }
    this.#succeed(value);
  }

  problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    this.#fail(code, detail, options?.extensions, options?.headers);
  }

  abort(error: Error): void {
    this.#fail('upstream-connection-error', `the answer was cut: ${error.message}`);
  }

  #decode(body: Buffer): Buffer | undefined {
    const options = { maxOutputLength: this.limit };
    try {
      switch (this.#encoding) {
        case 'gzip':
        case 'x-gzip':
          return gunzipSync(body, options);
        case 'deflate':
          return inflateSync(body, options);
        case 'br':
          return brotliDecompressSync(body, options);
        default:
          this.#fail('aggregate-part-invalid-body', `unsupported content-encoding "${this.#encoding}"`);
          return undefined;
      }
    } catch (error) {
      const tooLarge = (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      if (tooLarge) this.#fail('aggregate-part-too-large', `the decoded answer exceeds maxPartBody (${this.limit} bytes)`);
      else this.#fail('aggregate-part-invalid-body', `cannot decode ${this.#encoding}: ${(error as Error).message}`);
      return undefined;
    }
  }

  #succeed(value: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.settle({ ok: true, value });
  }

  #fail(code: ProblemCode, detail: string, extensions?: Record<string, unknown>, headers?: Record<string, string>): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = [];
    this.settle({
      ok: false,
      problem: problemBody(code, detail, { ...this.extensions, ...extensions }),
      timeout: isTimeout(code),
      headers,
    });
  }
}

/** Problem codes that mean "no answer in time" (a required part's → 504, not 502). */
function isTimeout(code: string): boolean {
  return code.endsWith('timeout') || code.startsWith('deadline');
}
