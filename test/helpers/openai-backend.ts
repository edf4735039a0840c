// A simulated OpenAI-style backend: /v1/chat/completions (and Azure's
// /openai/deployments/<name>/chat/completions) answering JSON or SSE (stream: true), with a
// `usage` (the SSE usage chunk only when stream_options.include_usage asks for it, as OpenAI
// does) and the x-ratelimit-* headers of a request and token budget that refills each window.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { startBackend, type TestBackend } from './backend.js';

export interface OpenAiBackendOptions {
  name?: string;
  /** Tokens the answer "uses": prompt and completion (default 10 and 20). */
  promptTokens?: number;
  completionTokens?: number;
  /** Requests / tokens per window; omitted: no remaining headers. */
  requestLimit?: number;
  tokenLimit?: number;
  windowMs?: number;
  /** Words of the streamed answer (default 5). */
  words?: number;
  /** Awaited before each answer (to hold requests in flight). */
  hold?: () => Promise<void>;
}

export interface OpenAiBackend extends TestBackend {
  readonly name: string;
  /** Requests answered 429 (its own limit spent). */
  readonly throttled: number;
  /** Requests answered 2xx. */
  readonly served: number;
  /** Set remaining requests for the current window (e.g. 0: the next one is refused). */
  setRemaining(requests: number): void;
}

export async function startOpenAiBackend(options: OpenAiBackendOptions = {}): Promise<OpenAiBackend> {
  const name = options.name ?? 'openai';
  const prompt = options.promptTokens ?? 10;
  const completion = options.completionTokens ?? 20;
  const windowMs = options.windowMs ?? 60_000;
  let windowStart = Date.now();
  let usedRequests = 0;
  let usedTokens = 0;
  const state = { throttled: 0, served: 0 };
  const roll = () => {
    const now = Date.now();
    if (now - windowStart >= windowMs) {
      windowStart = now - ((now - windowStart) % windowMs);
      usedRequests = 0;
      usedTokens = 0;
    }
  };
  const limitHeaders = (): Record<string, string> => {
    const headers: Record<string, string> = {};
    const resetMs = Math.max(0, windowStart + windowMs - Date.now());
    if (options.requestLimit !== undefined) {
      headers['x-ratelimit-limit-requests'] = String(options.requestLimit);
      headers['x-ratelimit-remaining-requests'] = String(Math.max(0, options.requestLimit - usedRequests));
      headers['x-ratelimit-reset-requests'] = `${resetMs}ms`;
    }
    if (options.tokenLimit !== undefined) {
      headers['x-ratelimit-limit-tokens'] = String(options.tokenLimit);
      headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, options.tokenLimit - usedTokens));
      headers['x-ratelimit-reset-tokens'] = `${resetMs}ms`;
    }
    return headers;
  };
  const handler = async (req: IncomingMessage, res: ServerResponse, raw: string) => {
    if (options.hold) await options.hold();
    roll();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    const model = typeof body.model === 'string' ? body.model : (/deployments\/([^/]+)/.exec(req.url ?? '')?.[1] ?? 'unknown');
    if (
      (options.requestLimit !== undefined && usedRequests >= options.requestLimit) ||
      (options.tokenLimit !== undefined && usedTokens + prompt > options.tokenLimit)
    ) {
      state.throttled++;
      const retryAfter = Math.max(1, Math.ceil((windowStart + windowMs - Date.now()) / 1000));
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfter), ...limitHeaders() });
      res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }));
      return;
    }
    usedRequests++;
    usedTokens += prompt + completion;
    state.served++;
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    const id = `chatcmpl-${state.served}`;
    const created = Math.floor(Date.now() / 1000);
    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-backend': name, ...limitHeaders() });
      const chunk = (delta: Record<string, unknown>, finish: string | null) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }, null));
      for (let i = 0; i < (options.words ?? 5); i++) res.write(chunk({ content: ` word${i}` }, null));
      res.write(chunk({}, 'stop'));
      const wantsUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
      if (wantsUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
      res.end('data: [DONE]\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, ...limitHeaders() });
    res.end(
      JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: `hello from ${name}` }, finish_reason: 'stop' }],
        usage,
      }),
    );
  };
  const backend = await startBackend(handler, name);
  const result = backend as OpenAiBackend;
  Object.defineProperties(result, {
    name: { value: name },
    throttled: { get: () => state.throttled },
    served: { get: () => state.served },
  });
  result.setRemaining = (requests: number) => {
    roll();
    if (options.requestLimit !== undefined) usedRequests = options.requestLimit - requests;
  };
  return result;
}
