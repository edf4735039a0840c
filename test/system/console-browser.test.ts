// The live console in a real headless Chromium: a gateway in front of two throttling backends
// (priority 1 and 2) under steady traffic; the page must show the priority-1 backend turn
// "cooling" with a running countdown within a second of its 429, the traffic chart move to the
// other backend, a rejected reload's file:line error, and load without a console error or a
// failed request. Screenshots go to test-output/ (docs/console.png with SPILLWAY_DOCS_SCREENSHOT=1).

import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { openBrowser, type Browser } from '../helpers/browser.js';
import { ROOT } from '../helpers/gateway.js';
import { startGatewayFromFile, type FileGateway } from '../helpers/reload.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const OUT = join(ROOT, 'test-output');
const SECRET = 'sk-live-console-test-0123456789';
const COOLDOWN_MS = 6_000;

/** A backend that answers 200 until told to throttle, then 429 with a retry hint. */
interface Throttling {
  backend: TestBackend;
  throttle: boolean;
  /** When it first answered 429 after being told to. */
  first429: number | undefined;
}

async function throttlingBackend(name: string): Promise<Throttling> {
  const state: Throttling = { backend: undefined as unknown as TestBackend, throttle: false, first429: undefined };
  state.backend = await startBackend((_req, res) => {
    if (state.throttle) {
      state.first429 ??= Date.now();
      res.writeHead(429, { 'retry-after-ms': String(COOLDOWN_MS), 'content-type': 'application/json' });
      res.end('{"error":"busy"}');
      return;
    }
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ backend: name }));
    }, 5);
  }, name);
  return state;
}

function config(a: TestBackend, b: TestBackend): string {
  return [
    'metrics: { enabled: false }',
    'rateLimits:',
    '  per-key: { key: header:x-api-key, capacity: 1000, refill: 500/s }',
    'upstreams:',
    '  llm:',
    '    backends:',
    `      - { url: ${a.url}, name: primary, priority: 1 }`,
    `      - { url: ${b.url}, name: spillover, priority: 2 }`,
    'routes:',
    '  - name: chat',
    '    match: { path: /v1/ }',
    '    upstream: llm',
    '    rateLimit: [per-key]',
    '  - name: version',
    '    match: { path: /version }',
    '    respond: { status: 200, body: "1" }',
    '',
  ].join('\n');
}

/** ~25 requests a second through the gateway until stopped. */
function traffic(url: string): { stop(): Promise<void> } {
  let running = true;
  const loops = [0, 1].map(async () => {
    while (running) {
      const response = await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'x-api-key': SECRET }, body: '{}' }).catch(
        () => undefined,
      );
      await response?.arrayBuffer();
      await sleep(80);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

let primary: Throttling;
let spillover: Throttling;
let gw: FileGateway;
let browser: Browser;
let load: { stop(): Promise<void> };
const badResponses: string[] = [];

beforeAll(async () => {
  await mkdir(OUT, { recursive: true });
  primary = await throttlingBackend('primary');
  spillover = await throttlingBackend('spillover');
  gw = await startGatewayFromFile(config(primary.backend, spillover.backend));
  load = traffic(gw.url);
  browser = await openBrowser();
  browser.page.on('response', (response) => {
    if (response.status() >= 400)
      badResponses.push(`${response.request().method()} ${new URL(response.url()).pathname} ${response.status()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await load?.stop();
  await gw?.close();
  await primary?.backend.close();
  await spillover?.backend.close();
});

type ChartProbe = { primary: number | null; spillover: number | null; points: number };

/** The newest point of each backend's share line in the llm chart (uPlot's own data). */
function chartShares(): Promise<ChartProbe | null> {
  return browser.page.evaluate(() => {
    const entry = (
      window as unknown as { spillwayConsole?: { charts: Map<string, { plot: { data: number[][] } }> } }
    ).spillwayConsole?.charts.get('llm');
    if (!entry) return null;
    const [t, a, b] = entry.plot.data;
    return { primary: a?.at(-1) ?? null, spillover: b?.at(-1) ?? null, points: t?.length ?? 0 };
  });
}

describe('the live console in headless Chromium', () => {
  it('shows the backends, turns the primary "cooling" with a countdown within 1 s of its 429, and the chart spills over', async () => {
    const { page } = browser;
    await page.goto(`${gw.adminUrl}/`);
    expect(new URL(page.url()).pathname).toBe('/console');
    await page.locator('#link[data-state="live"]').waitFor({ timeout: 5_000 });
    const primaryRow = page.locator('tr[data-backend="primary"]');
    await primaryRow.locator('.state-ready').waitFor({ timeout: 5_000 });
    await waitUntil(chartShares, {
      timeout: 10_000,
      message: 'the chart to show all traffic on the priority-1 backend',
      until: (probe) => probe !== null && probe.primary === 100,
    });

    primary.throttle = true;
    await primaryRow.locator('.state-cooling').waitFor({ timeout: 5_000 });
    const seen = Date.now();
    expect(primary.first429).toBeDefined();
    expect(seen - primary.first429!, 'ms from the 429 to "cooling" on the page').toBeLessThanOrEqual(1_000);

    const countdown = async () => Number(/cooling (\d+\.\d) s/.exec((await primaryRow.locator('.state-cooling').textContent()) ?? '')?.[1]);
    const first = await countdown();
    expect(first).toBeGreaterThan(3);
    expect(first).toBeLessThanOrEqual(COOLDOWN_MS / 1000);
    await sleep(700);
    const later = await countdown();
    expect(later).toBeLessThan(first);

    const moved = await waitUntil(chartShares, {
      timeout: 5_000,
      message: 'the chart to move the traffic to the priority-2 backend',
      until: (probe) => probe !== null && (probe.spillover ?? 0) >= 90,
    });
    expect(moved?.primary ?? 0).toBeLessThanOrEqual(10);
    await page.locator('#decisions li[data-event="backend.cooldown"]').first().waitFor({ timeout: 3_000 });
    await page.locator('#decisions li[data-event="upstream.failover"]').first().waitFor({ timeout: 3_000 });

    // The other panels: routes with their action, the limit policy, a client shown hashed only.
    await expect.poll(() => page.locator('#routes tbody tr').count()).toBe(2);
    expect(await page.locator('#routes tbody').textContent()).toContain('respond');
    await page.locator('#busiest tbody tr').first().waitFor({ timeout: 3_000 });
    expect(await page.content()).not.toContain(SECRET);
    // For the README's picture, a few more seconds of history on the chart.
    if (process.env.SPILLWAY_DOCS_SCREENSHOT === '1') await sleep(8_000);
    await page.screenshot({ path: join(OUT, 'console.png'), fullPage: true });
    if (process.env.SPILLWAY_DOCS_SCREENSHOT === '1') await copyFile(join(OUT, 'console.png'), join(ROOT, 'docs', 'console.png'));
    await page.locator('#config-details summary').click();
    expect(await page.locator('#config').textContent()).toContain('spillover');
  });

  it('shows the file:line error of a rejected reload, and the old config keeps serving', async () => {
    const { page } = browser;
    await gw.rewrite(`${config(primary.backend, spillover.backend)}upstreams2: {}\n`);
    await page.locator('#reload').click();
    const error = page.locator('#reload-errors li').first();
    await error.waitFor({ timeout: 5_000 });
    const text = (await error.textContent()) ?? '';
    expect(text).toMatch(new RegExp(`^${gw.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ `));
    expect(text).toContain('upstreams2');
    expect(await page.locator('#reload-result').textContent()).toContain('rejected');
    await page.locator('#decisions li[data-event="config.reload"]').first().waitFor({ timeout: 3_000 });
    expect((await fetch(`${gw.url}/version`)).status).toBe(200);
  });

  it('had no console error and no failed request (the rejected reload is the only 4xx)', async () => {
    await browser.page.goto('about:blank');
    expect(browser.problems.filter((line) => !/status of 422/.test(line))).toEqual([]);
    expect(badResponses).toEqual(['POST /admin/reload 422']);
  });

  it('fits a phone screen and reads in dark mode', async () => {
    const phone = await openBrowser({ colorScheme: 'dark', viewport: { width: 390, height: 844 } });
    try {
      await phone.page.goto(`${gw.adminUrl}/console`);
      await phone.page.locator('tr[data-backend="spillover"]').waitFor({ timeout: 5_000 });
      const layout = await phone.page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        background: getComputedStyle(document.body).backgroundColor,
        color: getComputedStyle(document.body).color,
      }));
      expect(layout.overflow, 'horizontal overflow of the page in px').toBeLessThanOrEqual(0);
      const [r, g, b] = layout.background.match(/\d+/g)!.map(Number);
      expect(r! + g! + b!, `dark background, got ${layout.background}`).toBeLessThan(120);
      await phone.page.screenshot({ path: join(OUT, 'console-phone-dark.png'), fullPage: true });
      await phone.page.goto('about:blank');
      expect(phone.problems).toEqual([]);
    } finally {
      await phone.close();
    }
  });
});
