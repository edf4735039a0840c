// The console over HTTP (the browser tests are in test/system/console-browser.test.ts): the page
// and its files on the admin listener, the Server-Sent Events feed, and `spillway status` in the
// terminal reading that feed from the built CLI.

import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { CLI, runCli, startGateway, type TestGateway } from './helpers/gateway.js';
import { waitUntil } from './helpers/wait.js';

let ok: TestBackend;
let busy: TestBackend;
let gw: TestGateway;

beforeAll(async () => {
  busy = await startStaticBackend(429, { 'retry-after-ms': '30000' });
  ok = await startBackend();
  gw = await startGateway(`
metrics: { enabled: false }
upstreams:
  llm:
    backends:
      - { url: ${busy.url}, name: busy, priority: 1 }
      - { url: ${ok.url}, name: spare, priority: 2 }
routes:
  - { name: chat, match: { path: / }, upstream: llm }
`);
});

afterAll(async () => {
  await gw?.close();
  await ok?.close();
  await busy?.close();
});

/** Reads the SSE feed until `until` holds for the messages so far (or 5 s pass). */
async function readStream(until: (messages: Array<{ event: string; data: unknown }>) => boolean) {
  const abort = new AbortController();
  const response = await fetch(`${gw.adminUrl}/admin/console/stream`, { signal: abort.signal });
  const messages: Array<{ event: string; data: unknown }> = [];
  const timer = setTimeout(() => abort.abort(), 5_000);
  let text = '';
  try {
    for await (const chunk of response.body!) {
      text += Buffer.from(chunk).toString('utf8');
      const blocks = text.split('\n\n');
      text = blocks.pop()!;
      for (const block of blocks) {
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) messages.push({ event, data: JSON.parse(data) });
      }
      if (until(messages)) break;
    }
  } catch {
    // aborted: the assertions below tell what was missing
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { response, messages };
}

describe('the console page on the admin listener', () => {
  it('redirects / to /console and serves the page, its script and uPlot from the package, with a strict CSP', async () => {
    const root = await fetch(`${gw.adminUrl}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console');
    const page = await fetch(`${gw.adminUrl}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('/console/uplot.js');
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
    const uplot = await fetch(`${gw.adminUrl}/console/uplot.js`);
    expect(uplot.status).toBe(200);
    expect(uplot.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await uplot.text()).toContain('uPlot');
    expect((await fetch(`${gw.adminUrl}/console/app.js`)).status).toBe(200);
    expect((await fetch(`${gw.adminUrl}/console/app.css`)).status).toBe(200);
    expect((await fetch(`${gw.adminUrl}/console/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${gw.adminUrl}/console/gateway.ts`)).status).toBe(404);
  });

  it('pushes the view and the decisions over Server-Sent Events: a cooldown arrives as it happens', async () => {
    const reader = readStream((messages) => messages.some((m) => m.event === 'decision'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const answer = await fetch(`${gw.url}/v1/chat`);
    expect(answer.status).toBe(200); // the 429 was absorbed: the spare answered
    const { response, messages } = await reader;
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(messages[0]!.event).toBe('state');
    const decision = messages.find((m) => m.event === 'decision')!.data as Record<string, unknown>;
    expect(decision).toMatchObject({ event: 'backend.cooldown', upstream: 'llm', source: 'retry-after-ms' });
    // A sampler runs only while a client watches: the reader has gone.
    await waitUntil(() => !gw.gateway.telemetry.console.active, { message: 'the tap to leave the request path' });
  });
});

describe('spillway status', () => {
  it('prints the upstream table: states, priorities, counts', async () => {
    const result = await runCli(['status', '--admin', gw.adminUrl]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^llm \(priority\)$/m);
    expect(result.stdout).toMatch(/^backend\s+prio\s+weight\s+state\s+req\/s/m);
    expect(result.stdout).toMatch(/^busy\s+1\s+1\s+cooling \d+\.\ds/m);
    expect(result.stdout).toMatch(/^spare\s+2\s+1\s+ready/m);
  });

  it('--watch redraws every second until Ctrl-C, then exits 0', async () => {
    const child = spawn(process.execPath, [CLI, 'status', '--watch', '--admin', gw.adminUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitUntil(() => (stdout.match(/^llm \(priority\)$/gm) ?? []).length, {
      timeout: 8_000,
      until: (n) => n >= 3,
      message: '3 redraws',
    });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('says what is wrong when the admin listener cannot be reached, with exit 1', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await runCli(['status', '--admin', `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^cannot read http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });
});
