// Token estimates by model, calendar quota windows, the fixed-window bucket, and the usage sink
// that reads usage from JSON and SSE answers (events split across chunks, CRLF) and takes out the
// usage chunk the gateway asked for.

import { describe, expect, it } from 'vitest';
import { takeFromBucket } from '../../src/ratelimit/bucket.js';
import { periodWindow } from '../../src/ratelimit/quota-period.js';
import { encodingFor, estimateTokens, parseJsonObject } from '../../src/ratelimit/token-estimate.js';
import type { ResponseSink } from '../../src/exchange/sink.js';
import { UsageSink, type TokenUsage } from '../../src/exchange/usage-sink.js';

describe('estimateTokens', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));
  it('counts the prompt with the model tokenizer and adds max_tokens; unknown models and non-JSON at bytes / 4', () => {
    const chat = body({
      model: 'gpt-4o-mini-2024-07-18',
      messages: [{ role: 'user', content: 'Hello there, how are you today?' }],
      max_tokens: 50,
    });
    const estimate = estimateTokens(chat, parseJsonObject(chat));
    expect(estimate.promptTokens).toBeGreaterThan(8);
    expect(estimate.promptTokens).toBeLessThan(20);
    expect(estimate.total).toBe(estimate.promptTokens + 50);
    expect(encodingFor('gpt-4')).toBe('cl100k_base');
    expect(encodingFor('ft:gpt-4o:org::x')).toBe('o200k_base');
    const llama = body({ model: 'llama-3-70b', messages: [{ role: 'user', content: 'x'.repeat(400) }] });
    expect(estimateTokens(llama, parseJsonObject(llama)).promptTokens).toBe(Math.ceil(llama.length / 4));
    const text = Buffer.from('not json at all');
    expect(parseJsonObject(text)).toBeUndefined();
    expect(estimateTokens(text, undefined).total).toBe(4);
    expect(parseJsonObject(Buffer.from('[1]'))).toBeUndefined();
    expect(parseJsonObject(Buffer.from('{broken'))).toBeUndefined();
  });
});

describe('periodWindow (UTC)', () => {
  const at = Date.UTC(2026, 11, 9, 13, 0, 0); // Wednesday 2026-12-09 13:00
  it('day, ISO week from Monday, month; ms until the end', () => {
    expect(periodWindow('day', at)).toEqual({ id: 'd2026-12-09', endsInMs: 11 * 3_600_000 });
    expect(periodWindow('week', at)).toEqual({ id: 'w2026-12-07', endsInMs: 4 * 86_400_000 + 11 * 3_600_000 });
    expect(periodWindow('month', at).id).toBe('m2026-12');
    expect(periodWindow('month', at).endsInMs).toBe(Date.UTC(2027, 0, 1) - at);
  });
});

describe('fixed-window bucket (quota)', () => {
  it('does not refill within the window, refuses until it ends, settles both ways', () => {
    const state = { tokens: 100, at: 0 };
    const request = { key: 'q', capacity: 100, refillPerMs: 0, cost: 60, maxWaitMs: 0, windowMs: 5000 };
    expect(takeFromBucket(state, 10, request)).toMatchObject({ allowed: true, remaining: 40, fullInMs: 5000 });
    expect(takeFromBucket(state, 4000, request)).toMatchObject({ allowed: false, waitMs: 5000 });
    expect(takeFromBucket(state, 4000, { ...request, cost: -20 })).toMatchObject({ allowed: true, remaining: 60 });
    expect(takeFromBucket(state, 4000, { ...request, cost: 90, maxWaitMs: Number.MAX_SAFE_INTEGER })).toMatchObject({ remaining: -30 });
  });
});

class Collect implements ResponseSink {
  started = false;
  status = 0;
  out: Buffer[] = [];
  ended = false;
  gone: Array<() => void> = [];
  onGone(listener: () => void): void {
    this.gone.push(listener);
  }
  start(status: number): void {
    this.started = true;
    this.status = status;
  }
  write(chunk: Buffer): boolean {
    this.out.push(Buffer.from(chunk));
    return true;
  }
  onDrain(): void {}
  end(): void {
    this.ended = true;
  }
  problem(): void {}
  abort(): void {}
  text(): string {
    return Buffer.concat(this.out).toString('utf8');
  }
}

const estimate = { model: 'gpt-4o-mini', promptTokens: 12, completionTokens: 0, total: 12 };
const chunk = (content: string) =>
  `data: {"object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"${content}"}}]}`;
const usageChunk =
  'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}';

describe('UsageSink', () => {
  it('SSE: reads the usage chunk and takes it out when the gateway asked for it, whatever the chunking (CRLF too)', () => {
    const inner = new Collect();
    let usage: TokenUsage | undefined;
    const sink = new UsageSink(inner, estimate, true, (u) => {
      usage = u;
    });
    sink.start(200, { 'content-type': 'text/event-stream' });
    const stream = `${chunk('Hel')}\r\n\r\n${chunk('lo é')}\n\n${usageChunk}\n\ndata: [DONE]\n\n`;
    const bytes = Buffer.from(stream);
    for (let i = 0; i < bytes.length; i += 7) sink.write(bytes.subarray(i, i + 7));
    sink.end();
    expect(inner.text()).toBe(`${chunk('Hel')}\r\n\r\n${chunk('lo é')}\n\ndata: [DONE]\n\n`);
    expect(usage).toEqual({ model: 'gpt-4o-mini', promptTokens: 11, completionTokens: 7, source: 'usage' });
  });

  it('SSE cut before usage: the prompt estimate plus the streamed text, counted', () => {
    const inner = new Collect();
    let usage: TokenUsage | undefined;
    const sink = new UsageSink(inner, estimate, false, (u) => {
      usage = u;
    });
    sink.start(200, { 'content-type': 'text/event-stream' });
    sink.write(Buffer.from(`${chunk(' hello world')}\n\n`));
    sink.abort(new Error('cut'));
    expect(usage?.source).toBe('counted');
    expect(usage?.promptTokens).toBe(12);
    expect(usage?.completionTokens).toBeGreaterThan(0);
  });

  it('JSON: usage from the body; an error answer or no answer costs 0', () => {
    const run = (status: number, body: string | undefined) => {
      let usage: TokenUsage | undefined = { model: undefined, promptTokens: -1, completionTokens: -1, source: 'none' };
      const sink = new UsageSink(new Collect(), estimate, false, (u) => {
        usage = u;
      });
      if (body === undefined) sink.problem('all-backends-throttled', 'x');
      else {
        sink.start(status, { 'content-type': 'application/json' });
        sink.write(Buffer.from(body));
        sink.end();
      }
      return usage;
    };
    expect(run(200, '{"model":"gpt-4o-mini","usage":{"prompt_tokens":3,"completion_tokens":4}}')).toMatchObject({
      promptTokens: 3,
      completionTokens: 4,
      source: 'usage',
    });
    expect(run(200, '{"model":"gpt-4o-mini"}')).toBeUndefined();
    expect(run(400, '{"error":{}}')).toMatchObject({ promptTokens: 0, completionTokens: 0, source: 'none' });
    expect(run(0, undefined)).toMatchObject({ promptTokens: 0, source: 'none' });
  });
});
