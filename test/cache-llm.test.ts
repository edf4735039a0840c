// LLM answers (cache: { keyBy: body }): POST answers keyed by the normalised JSON body, only for
// deterministic requests; streamed (SSE) answers stored once complete and replayed as the same
// stream.

import { afterEach, describe, expect, it } from 'vitest';
import { closeAll } from './helpers/backend.js';
import { cacheSetup, type CacheSetup } from './helpers/cache.js';
import { sleep } from './helpers/wait.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await closeAll(...open.splice(0));
});

const SSE_EVENTS = ['{"choices":[{"delta":{"content":"Hel"}}]}', '{"choices":[{"delta":{"content":"lo"}}]}', '[DONE]'];

async function llm(cache = '{ keyBy: body, defaultTtl: 10m }'): Promise<CacheSetup> {
  let n = 0;
  const s = await cacheSetup(async (_req, res, body) => {
    n++;
    const request = JSON.parse(body) as { stream?: boolean };
    if (request.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-transform' });
      for (const event of SSE_EVENTS) {
        res.write(`data: ${event}\n\n`);
        await sleep(20);
      }
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: `chatcmpl-${n}`, choices: [{ message: { content: 'Hello' } }] }));
  }, cache);
  open.push(s.gw, s.backend);
  return s;
}

const post = (s: CacheSetup, body: unknown, headers: Record<string, string> = {}) =>
  s.get(
    '/v1/chat/completions',
    { 'content-type': 'application/json', ...headers },
    'POST',
    typeof body === 'string' ? body : JSON.stringify(body),
  );

describe('LLM answers keyed by body', () => {
  it('temperature 0: the same request (any key order, any whitespace) is answered from the cache', async () => {
    const s = await llm();
    const first = await post(s, { model: 'gpt-x', temperature: 0, messages: [{ role: 'user', content: 'hi' }] });
    expect(first.cacheStatus).toBe('spillway; fwd=uri-miss; fwd-status=200; stored');
    const second = await post(s, `{ "messages": [ {"content":"hi", "role":"user"} ],\n "temperature": 0, "model": "gpt-x" }`);
    expect(second.body).toBe(first.body);
    expect(second.cacheStatus).toMatch(/^spillway; hit; ttl=\d+$/);
    expect(second.age).toBeGreaterThanOrEqual(0);
    const other = await post(s, { model: 'gpt-x', temperature: 0, messages: [{ role: 'user', content: 'bye' }] });
    expect(other.body).not.toBe(first.body);
    expect(s.calls()).toBe(2);
  });

  it('sampled requests are not cached, unless the route names a header that marks them deterministic', async () => {
    const s = await llm('{ keyBy: body, defaultTtl: 10m, deterministicHeader: x-cache-deterministic }');
    const sampled = { model: 'gpt-x', temperature: 0.7, messages: [{ role: 'user', content: 'hi' }] };
    expect((await post(s, sampled)).cacheStatus).toBe('spillway; fwd=bypass; fwd-status=200; detail=not-deterministic');
    await post(s, sampled);
    expect(s.calls()).toBe(2);
    await post(s, sampled, { 'x-cache-deterministic': 'true' });
    expect((await post(s, sampled, { 'x-cache-deterministic': 'true' })).cacheStatus).toContain('hit');
    expect(s.calls()).toBe(3);
  });

  it('a body over limits.maxRequestBody gets the usual 413 problem, with Cache-Status', async () => {
    const s = await llm();
    const answer = await s.get('/v1/chat/completions', { 'content-type': 'application/json' }, 'POST', 'x'.repeat(11 * 1024 * 1024));
    expect(answer.status).toBe(413);
    expect(answer.headers.get('content-type')).toBe('application/problem+json');
    expect(answer.cacheStatus).toContain('fwd-status=413');
  });

  it('a body that is not JSON passes through', async () => {
    const s = await llm();
    const answer = await s.get('/v1/chat/completions', { 'content-type': 'text/plain' }, 'POST', 'not json');
    expect(answer.cacheStatus).toContain('detail=not-json');
  });

  it('a streamed answer is stored once complete and replayed as the same SSE stream', async () => {
    const s = await llm();
    const request = { model: 'gpt-x', temperature: 0, stream: true, messages: [{ role: 'user', content: 'hi' }] };
    const first = await post(s, request);
    const expected = SSE_EVENTS.map((event) => `data: ${event}\n\n`).join('');
    expect(first.body).toBe(expected);
    const replay = await post(s, request);
    expect(replay.body).toBe(expected);
    expect(replay.headers.get('content-type')).toBe('text/event-stream');
    expect(replay.headers.get('content-length')).toBeNull();
    expect(replay.cacheStatus).toContain('hit');
    expect(s.calls()).toBe(1);
  });

  it('without freshness (no defaultTtl, none from the backend) POST answers are not stored', async () => {
    const s = await llm('{ keyBy: body }');
    const request = { model: 'gpt-x', temperature: 0, messages: [] };
    await post(s, request);
    await post(s, request);
    expect(s.calls()).toBe(2);
  });
});
