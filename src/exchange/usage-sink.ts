// Reads what an LLM answer really used, as it streams to the client: the `usage` object of a JSON
// answer, or of the last SSE chunk of a streamed one (`stream_options.include_usage`). When the
// gateway itself asked for that chunk (the client did not), the chunk is taken out of the stream,
// so the client gets exactly what it asked for. The answer's end reports the tokens used:
//   - `usage` seen: prompt + completion tokens, as the backend counted them;
//   - streamed answer without usage (ended or cut): the prompt estimate plus the streamed text
//     counted with the model's tokenizer;
//   - a JSON answer without usage: unknown (the reservation keeps its estimate);
//   - a non-2xx answer, or none at all (gateway problem): 0 — the backend did no billable work.

import type { IncomingHttpHeaders } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { ProblemCode } from '../core/problems.js';
import { countTextTokens, type TokenEstimate } from '../ratelimit/token-estimate.js';
import { DelegatingSink } from './delegating-sink.js';
import type { ProblemOptions, ResponseSink } from './sink.js';

export interface TokenUsage {
  readonly model: string | undefined;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** usage: counted by the backend; counted: estimated by the gateway; none: no billable answer. */
  readonly source: 'usage' | 'counted' | 'none';
}

/** Largest JSON answer kept to read its usage (larger ones keep their estimate). */
const MAX_JSON = 8 * 1024 * 1024;
/** Most streamed text kept for counting when no usage comes. */
const MAX_TEXT = 4 * 1024 * 1024;
/** Longest SSE event read (an LLM chunk is far smaller). */
const MAX_EVENT = 1024 * 1024;

export class UsageSink extends DelegatingSink {
  #status = 0;
  #sse = false;
  #json: Buffer[] | undefined;
  #jsonSize = 0;
  #pending = '';
  #text = '';
  #usage: { prompt: number; completion: number; model: string | undefined } | undefined;
  #model: string | undefined;
  #done = false;
  readonly #decoder = new StringDecoder('utf8');

  constructor(
    inner: ResponseSink,
    readonly estimate: TokenEstimate | undefined,
    /** The gateway added stream_options.include_usage: the usage-only chunk is not forwarded. */
    readonly stripUsageChunk: boolean,
    readonly onUsage: (usage: TokenUsage | undefined) => void,
    /** false: only report the end (settle in-flight slots); the answer is not read. */
    readonly read = true,
  ) {
    super(inner);
    this.#model = estimate?.model;
    inner.onGone(() => this.#finish());
  }

  override start(status: number, headers: IncomingHttpHeaders): void {
    this.#status = status;
    const type = String(headers['content-type'] ?? '').toLowerCase();
    this.#sse = this.read && type.startsWith('text/event-stream');
    if (this.read && !this.#sse && status >= 200 && status < 300) this.#json = [];
    // A rewritten stream has another length than the backend announced.
    if (this.#sse && this.stripUsageChunk) delete headers['content-length'];
    super.start(status, headers);
  }

  override write(chunk: Buffer): boolean {
    if (!this.read || this.#status < 200 || this.#status >= 300) return super.write(chunk);
    if (this.#sse) return this.#writeEvents(chunk);
    if (this.#json) {
      this.#jsonSize += chunk.length;
      if (this.#jsonSize > MAX_JSON) this.#json = undefined;
      else this.#json.push(Buffer.from(chunk));
    }
    return super.write(chunk);
  }

  override end(): void {
    if (this.#sse && this.stripUsageChunk) {
      const rest = this.#pending + this.#decoder.end();
      this.#pending = '';
      if (rest.length > 0) super.write(Buffer.from(rest));
    }
    if (this.#json) this.#readJson(Buffer.concat(this.#json, this.#jsonSize));
    this.#finish();
    super.end();
  }

  override problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    this.#finish();
    super.problem(code, detail, options);
  }

  override abort(error: Error): void {
    this.#finish();
    super.abort(error);
  }

  #writeEvents(chunk: Buffer): boolean {
    this.#pending += this.#decoder.write(chunk);
    let out = '';
    for (;;) {
      const end = eventEnd(this.#pending);
      if (end === -1) break;
      const next = end + separatorLength(this.#pending, end);
      const usageOnly = this.#readEvent(this.#pending.slice(0, end));
      if (!(this.stripUsageChunk && usageOnly)) out += this.#pending.slice(0, next);
      this.#pending = this.#pending.slice(next);
    }
    if (this.#pending.length > MAX_EVENT) {
      // One event this long is not an LLM chunk: pass it on unread.
      out += this.#pending;
      this.#pending = '';
    }
    // Nothing is taken out unless the gateway asked for the usage chunk: the bytes go on as they came.
    if (!this.stripUsageChunk) return super.write(chunk);
    return out.length > 0 ? super.write(Buffer.from(out)) : true;
  }

  /** Parses one SSE event; returns true when it was the usage-only chunk. */
  #readEvent(event: string): boolean {
    let usageOnly = false;
    for (const line of event.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '' || data === '[DONE]') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        continue;
      }
      if (!parsed || typeof parsed !== 'object') continue;
      const object = parsed as Record<string, unknown>;
      if (typeof object.model === 'string') this.#model = object.model;
      const usage = readUsage(object);
      if (usage) {
        this.#usage = { ...usage, model: this.#model };
        if (Array.isArray(object.choices) && object.choices.length === 0) usageOnly = true;
      }
      if (Array.isArray(object.choices) && this.#text.length < MAX_TEXT) {
        for (const choice of object.choices) {
          const delta = (choice as { delta?: { content?: unknown } } | null)?.delta;
          if (typeof delta?.content === 'string') this.#text += delta.content;
        }
      }
    }
    return usageOnly;
  }

  #readJson(body: Buffer): void {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (!parsed || typeof parsed !== 'object') return;
      const object = parsed as Record<string, unknown>;
      if (typeof object.model === 'string') this.#model = object.model;
      const usage = readUsage(object);
      if (usage) this.#usage = { ...usage, model: this.#model };
    } catch {
      // not JSON: the estimate stands
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#usage) {
      this.onUsage({
        model: this.#usage.model,
        promptTokens: this.#usage.prompt,
        completionTokens: this.#usage.completion,
        source: 'usage',
      });
      return;
    }
    if (this.#status === 0 || this.#status < 200 || this.#status >= 300) {
      // No answer, or a refusal/error from the backend: nothing billable.
      this.onUsage({ model: this.#model, promptTokens: 0, completionTokens: 0, source: 'none' });
      return;
    }
    if (this.#sse) {
      const completion = this.#text.length > 0 ? countTextTokens(this.#model, this.#text) : 0;
      this.onUsage({ model: this.#model, promptTokens: this.estimate?.promptTokens ?? 0, completionTokens: completion, source: 'counted' });
      return;
    }
    // A JSON answer without usage (or cut, or too large): its cost is not known.
    this.onUsage(undefined);
  }
}

/** prompt/completion from an OpenAI `usage` (chat: prompt_/completion_tokens; responses API: input_/output_tokens). */
function readUsage(object: Record<string, unknown>): { prompt: number; completion: number } | undefined {
  let usage = object.usage;
  if ((!usage || typeof usage !== 'object') && object.response && typeof object.response === 'object')
    usage = (object.response as Record<string, unknown>).usage;
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  const prompt = num(u.prompt_tokens) ?? num(u.input_tokens);
  const completion = num(u.completion_tokens) ?? num(u.output_tokens) ?? 0;
  const total = num(u.total_tokens);
  if (prompt === undefined && total === undefined) return undefined;
  return { prompt: prompt ?? Math.max(0, (total ?? 0) - completion), completion };
}

const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined);

/** Index of the blank line ending the first complete event, or -1. */
function eventEnd(text: string): number {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (lf === -1) return crlf;
  if (crlf === -1) return lf;
  return Math.min(lf, crlf);
}

function separatorLength(text: string, at: number): number {
  return text.startsWith('\r\n\r\n', at) ? 4 : 2;
}
