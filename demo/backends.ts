// A simulated Azure OpenAI deployment, used by the demo, the tests and the benchmarks.
//
// Each backend has a request budget per fixed one-second window aligned to wall-clock seconds
// (window = Math.floor(Date.now() / 1000)). Within budget it answers like a chat-completions
// deployment (JSON, or Server-Sent Events when the JSON body has `"stream": true`); over budget it
// answers 429 with the headers Azure sends (`retry-after`, `retry-after-ms`, `x-ms-retry-after-ms`)
// and Azure's error JSON. It is deliberately lean: one closure per request, no per-request timers
// unless `latencyMs` > 0 or the response streams, so it can sit behind benchmarks at 1000+ req/s.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SimulatedBackendOptions {
  /** Name reported in response bodies and the `x-backend` header. */
  name: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Interface to bind; 127.0.0.1 by default. */
  host?: string;
  /** Requests accepted per wall-clock second; the rest get 429. */
  budgetPerSecond: number;
  /** Delay before answering an accepted request; 0 (default) answers at once. */
  latencyMs?: number;
  /**
   * Answer like OpenAI: every answer carries x-ratelimit-limit-requests and
   * x-ratelimit-reset-requests (until the next window) beside the remaining count, and a 429
   * carries only a whole-second Retry-After (no retry-after-ms). Default false (Azure-like).
   */
  openAiHeaders?: boolean;
  /** Retry hints of a 429: `ms` (default: retry-after, retry-after-ms, x-ms-retry-after-ms) or `seconds` (retry-after only, whole seconds rounded up). */
  hints?: 'ms' | 'seconds';
}

export interface SimulatedBackend {
  name: string;
  /** Base URL, e.g. http://127.0.0.1:9001 */
  url: string;
  port: number;
  /** Requests accepted within the budget (answered 200). */
  served: number;
  /** Requests answered 429. */
  throttled: number;
  /** All requests received. */
  received: number;
  close(): Promise<void>;
}

/** Requests whose body is larger than this are drained but not inspected for `"stream": true`. */
const MAX_INSPECTED_BODY = 256 * 1024;
const STREAM_EVENTS = 3;
const STREAM_INTERVAL_MS = 50;
const STREAM_WORDS = ['Hello', ' from', ' spillway'];

export function startSimulatedBackend(opts: SimulatedBackendOptions): Promise<SimulatedBackend> {
  const name = opts.name;
  const host = opts.host ?? '127.0.0.1';
  const budget = Math.max(0, Math.floor(opts.budgetPerSecond));
  const latencyMs = Math.max(0, opts.latencyMs ?? 0);
  const msHints = opts.hints !== 'seconds';

  let window = -1;
  let usedInWindow = 0;
  let sequence = 0;
  /** Timers of delayed or streaming responses, cleared on close(). */
  const timers = new Set<NodeJS.Timeout>();

  const backend: SimulatedBackend = {
    name,
    url: '',
    port: 0,
    served: 0,
    throttled: 0,
    received: 0,
    close: () => Promise.resolve(),
  };

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const sendThrottled = (res: ServerResponse, now: number): void => {
    const waitMs = Math.max(1, (window + 1) * 1000 - now);
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const body = JSON.stringify({
      error: {
        code: '429',
        message:
          `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 ` +
          `have exceeded call rate limit of your current OpenAI S0 pricing tier (simulated backend "${name}", ` +
          `${budget} requests per second). Please retry after ${seconds} seconds.`,
      },
    });
    if (opts.openAiHeaders) {
      res.writeHead(429, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'retry-after': String(seconds),
        ...limitHeaders(0, now),
        'x-backend': name,
      });
      res.end(body);
      return;
    }
    res.writeHead(429, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'retry-after': String(seconds),
      ...(msHints ? { 'retry-after-ms': String(waitMs), 'x-ms-retry-after-ms': String(waitMs) } : {}),
      'x-ratelimit-remaining-requests': '0',
      'x-backend': name,
    });
    res.end(body);
  };

  /** The remaining-budget headers of an answer (OpenAI style, or the remaining count only). */
  const limitHeaders = (remaining: number, now = Date.now()): Record<string, string> =>
    opts.openAiHeaders
      ? {
          'x-ratelimit-limit-requests': String(budget),
          'x-ratelimit-remaining-requests': String(remaining),
          'x-ratelimit-reset-requests': `${Math.max(1, (window + 1) * 1000 - now)}ms`,
        }
      : { 'x-ratelimit-remaining-requests': String(remaining) };

  const sendJson = (res: ServerResponse, id: string, remaining: number): void => {
    if (res.destroyed) return;
    const body = JSON.stringify({
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: 'gpt-4o',
      backend: name,
      choices: [
        {
          index: 0,
          finish_reason: 'stop',
          message: { role: 'assistant', content: `Hello from ${name}.` },
        },
      ],
      usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 },
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...limitHeaders(remaining),
      'x-backend': name,
    });
    res.end(body);
  };

  const sendStream = (res: ServerResponse, id: string, remaining: number): void => {
    if (res.destroyed) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      ...limitHeaders(remaining),
      'x-backend': name,
    });
    res.flushHeaders();
    let sent = 0;
    const step = (): void => {
      if (res.destroyed) return;
      if (sent < STREAM_EVENTS) {
        const chunk = {
          id,
          object: 'chat.completion.chunk',
          backend: name,
          choices: [{ index: 0, delta: { content: STREAM_WORDS[sent % STREAM_WORDS.length] }, finish_reason: null }],
        };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        sent++;
        later(STREAM_INTERVAL_MS, step);
      } else {
        res.end('data: [DONE]\n\n');
      }
    };
    step();
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    backend.received++;
    const now = Date.now();
    const current = Math.floor(now / 1000);
    if (current !== window) {
      window = current;
      usedInWindow = 0;
    }

    if (usedInWindow >= budget) {
      backend.throttled++;
      // Drain the body, then answer, so the connection stays reusable.
      if (req.complete) {
        sendThrottled(res, now);
      } else {
        req.on('end', () => sendThrottled(res, now));
        req.on('error', () => res.destroy());
        req.resume();
      }
      return;
    }

    usedInWindow++;
    backend.served++;
    const remaining = budget - usedInWindow;
    const id = `chatcmpl-${name}-${++sequence}`;

    let chunks: Buffer[] | undefined;
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_INSPECTED_BODY) (chunks ??= []).push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      let stream = false;
      if (chunks !== undefined && size <= MAX_INSPECTED_BODY) {
        const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
        if (text.includes('"stream"')) {
          try {
            stream = (JSON.parse(text) as { stream?: unknown }).stream === true;
          } catch {
            stream = false;
          }
        }
      }
      const respond = stream ? sendStream : sendJson;
      if (latencyMs > 0) later(latencyMs, () => respond(res, id, remaining));
      else respond(res, id, remaining);
    });
  };

  const server = createServer({ keepAliveTimeout: 65_000 }, handle);

  return new Promise<SimulatedBackend>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${host}:${opts.port ?? 0}`;
      const reason =
        err.code === 'EADDRINUSE'
          ? `port ${opts.port ?? 0} is already in use`
          : err.code === 'EACCES'
            ? `permission denied to listen on port ${opts.port ?? 0}`
            : err.message;
      const wrapped = new Error(`simulated backend "${name}" could not listen on ${where}: ${reason}`, { cause: err });
      (wrapped as NodeJS.ErrnoException).code = err.code;
      reject(wrapped);
    };
    server.once('error', onError);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', onError);
      const port = (server.address() as AddressInfo).port;
      const urlHost = host.includes(':') ? `[${host}]` : host;
      backend.port = port;
      backend.url = `http://${urlHost}:${port}`;
      let closing: Promise<void> | undefined;
      backend.close = () => {
        closing ??= new Promise<void>((done) => {
          for (const timer of timers) clearTimeout(timer);
          timers.clear();
          server.close(() => done());
          server.closeAllConnections();
        });
        return closing;
      };
      resolve(backend);
    });
  });
}
