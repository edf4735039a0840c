import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulatedBackend, type SimulatedBackend } from '../demo/backends.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Body chunks with the time (ms since the request was sent) at which each arrived. */
  chunks: { at: number; text: string }[];
}

function send(url: string, opts: { method?: string; body?: string; path?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const req = request(
      new URL(opts.path ?? '/openai/deployments/gpt-4o/chat/completions', url),
      {
        method: opts.method ?? 'POST',
        headers: opts.body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: { at: number; text: string }[] = [];
        res.setEncoding('utf8');
        res.on('data', (text: string) => chunks.push({ at: Date.now() - started, text }));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.map((c) => c.text).join(''), chunks }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
    req.end(opts.body);
  });
}

/** Waits until at least `minRemainingMs` are left in the current wall-clock second. */
async function waitForFreshWindow(minRemainingMs = 600): Promise<void> {
  const left = 1000 - (Date.now() % 1000);
  if (left < minRemainingMs) await new Promise((r) => setTimeout(r, left + 5));
}

const started: SimulatedBackend[] = [];
async function start(opts: Parameters<typeof startSimulatedBackend>[0]): Promise<SimulatedBackend> {
  const backend = await startSimulatedBackend(opts);
  started.push(backend);
  return backend;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.close()));
});

const CHAT = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });

describe('simulated Azure OpenAI backend', () => {
  it('listens on 127.0.0.1 with a free port by default', async () => {
    const b = await start({ name: 'a', budgetPerSecond: 1 });
    expect(b.port).toBeGreaterThan(0);
    expect(b.url).toBe(`http://127.0.0.1:${b.port}`);
    expect(b.name).toBe('a');
  });

  it('serves a chat-completion body naming the backend', async () => {
    const b = await start({ name: 'east', budgetPerSecond: 10 });
    const reply = await send(b.url, { body: CHAT });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    const json = JSON.parse(reply.body);
    expect(json.object).toBe('chat.completion');
    expect(json.backend).toBe('east');
    expect(typeof json.id).toBe('string');
    expect(json.choices[0].message.role).toBe('assistant');
    expect(typeof json.choices[0].message.content).toBe('string');
    expect(b).toMatchObject({ received: 1, served: 1, throttled: 0 });
  });

  it('respects the budget within one wall-clock window', async () => {
    const b = await start({ name: 'tight', budgetPerSecond: 3 });
    await waitForFreshWindow();
    const window = Math.floor(Date.now() / 1000);
    const replies = await Promise.all(Array.from({ length: 8 }, () => send(b.url, { body: CHAT })));
    // All eight must have landed in the same second for the counts to be exact.
    expect(Math.floor(Date.now() / 1000)).toBe(window);
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    expect(b).toMatchObject({ received: 8, served: 3, throttled: 5 });
  });

  it('starts a fresh budget in the next window', async () => {
    const b = await start({ name: 'renew', budgetPerSecond: 1 });
    await waitForFreshWindow();
    expect((await send(b.url, { body: CHAT })).status).toBe(200);
    const throttled = await send(b.url, { body: CHAT });
    expect(throttled.status).toBe(429);
    await new Promise((r) => setTimeout(r, Number(throttled.headers['retry-after-ms']) + 20));
    expect((await send(b.url, { body: CHAT })).status).toBe(200);
    expect(b).toMatchObject({ received: 3, served: 2, throttled: 1 });
  });

  it('answers 429 with consistent Azure retry headers and error JSON', async () => {
    const b = await start({ name: 'zero', budgetPerSecond: 0 });
    const before = Date.now();
    const reply = await send(b.url, { body: CHAT });
    const after = Date.now();
    expect(reply.status).toBe(429);
    expect(reply.headers['content-type']).toBe('application/json');

    const retryAfter = reply.headers['retry-after'] as string;
    const retryAfterMs = reply.headers['retry-after-ms'] as string;
    const msRetryAfterMs = reply.headers['x-ms-retry-after-ms'] as string;
    expect(retryAfter).toMatch(/^\d+$/);
    expect(retryAfterMs).toMatch(/^\d+$/);
    expect(msRetryAfterMs).toBe(retryAfterMs);

    const ms = Number(retryAfterMs);
    expect(ms).toBeGreaterThanOrEqual(1);
    expect(ms).toBeLessThanOrEqual(1000);
    // The wait ends at the start of the next wall-clock second.
    const nextWindowLow = (Math.floor(before / 1000) + 1) * 1000;
    const nextWindowHigh = (Math.floor(after / 1000) + 1) * 1000;
    expect(before + ms).toBeLessThanOrEqual(nextWindowHigh);
    expect(after + ms).toBeGreaterThanOrEqual(nextWindowLow);
    expect(Number(retryAfter)).toBe(Math.max(1, Math.ceil(ms / 1000)));

    const json = JSON.parse(reply.body);
    expect(json.error.code).toBe('429');
    expect(json.error.message).toContain('Requests to the ChatCompletions_Create Operation');
    expect(json.error.message).toContain(`Please retry after ${retryAfter} seconds.`);
    expect(b).toMatchObject({ received: 1, served: 0, throttled: 1 });
  });

  it('drains large request bodies, served or throttled, on a kept-alive connection', async () => {
    const b = await start({ name: 'drain', budgetPerSecond: 1 });
    await waitForFreshWindow();
    const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024) }] });
    const first = await send(b.url, { body: big });
    const second = await send(b.url, { body: big });
    expect(first.status).toBe(200);
    expect(second.status).toBe(429);
    expect(b.received).toBe(2);
  });

  it('streams three separate SSE events then [DONE] when the body asks for stream: true', async () => {
    const b = await start({ name: 'sse', budgetPerSecond: 5 });
    const reply = await send(b.url, { body: JSON.stringify({ stream: true, messages: [] }) });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/event-stream');

    const events = reply.body
      .split('\n\n')
      .filter((e) => e.length > 0)
      .map((e) => e.replace(/^data: /, ''));
    expect(events).toHaveLength(4);
    expect(events[3]).toBe('[DONE]');
    for (const e of events.slice(0, 3)) {
      const chunk = JSON.parse(e);
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.backend).toBe('sse');
      expect(typeof chunk.choices[0].delta.content).toBe('string');
    }

    // The events were written ~50 ms apart, so they arrive as separate chunks over time.
    const withEvents = reply.chunks.filter((c) => c.text.includes('data:'));
    expect(withEvents.length).toBeGreaterThanOrEqual(4);
    const span = withEvents[withEvents.length - 1]!.at - withEvents[0]!.at;
    expect(span).toBeGreaterThanOrEqual(120);
  });

  it('does not stream when stream is absent or not true', async () => {
    const b = await start({ name: 'nostream', budgetPerSecond: 5 });
    const reply = await send(b.url, { body: JSON.stringify({ stream: 'yes', messages: [] }) });
    expect(reply.headers['content-type']).toBe('application/json');
    const get = await send(b.url, { method: 'GET' });
    expect(get.status).toBe(200);
  });

  it('waits latencyMs before answering', async () => {
    const b = await start({ name: 'slow', budgetPerSecond: 5, latencyMs: 120 });
    const t0 = Date.now();
    const reply = await send(b.url, { body: CHAT });
    expect(reply.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
  });

  it('rejects with a message naming the port when it is busy', async () => {
    const a = await start({ name: 'first', budgetPerSecond: 1 });
    await expect(startSimulatedBackend({ name: 'second', port: a.port, budgetPerSecond: 1 })).rejects.toThrow(
      new RegExp(`port ${a.port} is already in use`),
    );
  });

  it('close() ends in-flight streams and frees the port', async () => {
    const b = await start({ name: 'closing', budgetPerSecond: 5 });
    const pending = send(b.url, { body: JSON.stringify({ stream: true }) }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 30));
    await b.close();
    const outcome = await pending;
    // the stream was cut mid-way: the client's response is aborted, it never gets the final [DONE]
    expect(outcome).toBeInstanceOf(Error);
    // "aborted" once headers were in; a reset can win the race on a busy machine
    expect(['aborted', 'read ECONNRESET']).toContain((outcome as Error).message);
    const again = await startSimulatedBackend({ name: 'reuse', port: b.port, budgetPerSecond: 1 });
    expect(again.port).toBe(b.port);
    await again.close();
  });
});
