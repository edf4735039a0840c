// Scenario "cache-throttled": what the cache saves when the backends cannot keep up.
//
// Two simulated LLM backends (demo/backends.ts in children/backends-host.ts), 150 req/s each, answer
// 429 + retry hints beyond their per-second budget. The load is twice their capacity: deterministic
// chat completions (temperature 0) rotating over a fixed set of prompts, as a retrieval or
// classification workload sends them. The same load goes, one after the other, through spillway
// without a cache and through spillway with `cache: { keyBy: body, defaultTtl: 30s, staleIfError: 5m }`.
// Reported per phase: client 2xx share and 429s, backend calls; for the cached one the hit ratio.

import { configHead, forkTarget, startGateway, withTargets } from '../lib/processes.ts';
import { firstMeasuredWindow, loadSliced, windowTotals } from '../lib/load.ts';
import { gatewayLog, gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, pct, table } from '../lib/format.ts';
import { sum } from '../lib/stats.ts';

export const title = 'spillway bench — cache-throttled';
export const intro = `
Two simulated backends at 150 req/s each (priority 1), over budget 429 with retry hints. Load: chat
completions with \`temperature: 0\` rotating over 50 prompts (each connection walks the list), at twice the backends' capacity (\`--rate\`,
default 600/s), through **spillway uncached** and then **spillway cached** (\`cache: { keyBy: body,
defaultTtl: 30s, staleIfError: 5m }\`, memory store). Figures cover the whole seconds after the warm-up.
`;

const BACKENDS = [
  { name: 'a', budgetPerSecond: 150 },
  { name: 'b', budgetPerSecond: 150 },
];
const PROMPTS = 50;
const PATH = '/v1/chat/completions';
const TAIL_S = 2;

function gatewayYaml(backends: { url: string }[], cache: boolean): string {
  return `${configHead('bench/scenarios/cache-throttled.ts')}upstreams:
  sim:
    backends:
${backends.map((b) => `      - { url: ${b.url} }`).join('\n')}
routes:
  - match: { path: /v1/ }
    upstream: sim
${cache ? '    cache: { keyBy: body, defaultTtl: 30s, staleIfError: 5m }\n' : ''}`;
}

type Counters = { name: string; served: number; throttled: number; received: number }[];

async function cacheResults(adminUrl: string | undefined): Promise<Record<string, number>> {
  if (!adminUrl) return {};
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^spillway_cache_requests_total\{[^}]*result="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (match) out[match[1]!] = (out[match[1]!] ?? 0) + Number(match[2]);
  }
  return out;
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  const { duration, warmup, connections, slices } = settings;
  const rate = settings.rate;
  const host = await forkTarget(
    'backends-host.ts',
    [JSON.stringify(BACKENDS.map((b) => ({ ...b, latencyMs: settings.backendLatencyMs })))],
    {
      label: 'backends',
    },
  );
  return withTargets(async ({ track, stopInOrder }) => {
    track(host);
    const backends = host.ready.backends as { name: string; url: string }[];
    const requests = Array.from({ length: PROMPTS }, (_, i) => ({
      method: 'POST',
      path: PATH,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o',
        temperature: 0,
        max_tokens: 16,
        messages: [{ role: 'user', content: `Classify ticket #${i}.` }],
      }),
    }));
    const phases: Record<string, unknown> = {};
    const rows: string[][] = [];
    const gateways: Record<string, Awaited<ReturnType<typeof startGateway>>> = {};
    const stops: Record<string, unknown> = {};
    for (const [name, cache] of [
      ['spillway uncached', false],
      ['spillway cached', true],
    ] as const) {
      const gateway = track(await startGateway(gatewayYaml(backends, cache), { label: name }));
      gateways[name] = gateway;
      const before = (await host.request<{ backends: Counters }>({ type: 'stats' })).backends;
      const seconds = warmup + duration + TAIL_S;
      log(`${name}: ${rate} req/s over ${PROMPTS} prompts for ${seconds}s (measured ${duration}s)`);
      const loadRun = await loadSliced({
        url: gateway.url,
        requests,
        connections,
        overallRate: rate,
        slices,
        seconds,
        ignoreCoordinatedOmission: true,
        pipelining: 1,
      });
      const after = (await host.request<{ backends: Counters }>({ type: 'stats' })).backends;
      const results = cache ? await cacheResults(gateway.admin) : {};
      stops[name] = (await stopInOrder([[name, gateway]]))[name];
      const first = firstMeasuredWindow(loadRun.startedAt, slices, warmup);
      const client = windowTotals(loadRun.windows, first, duration);
      const backendCalls = sum(after.map((b, i) => b.received - before[i]!.received));
      const backendServed = sum(after.map((b, i) => b.served - before[i]!.served));
      const answered = Object.values(results).reduce((a, b) => a + b, 0);
      const hits = (results.hit ?? 0) + (results.collapsed ?? 0) + (results.stale ?? 0) + (results.revalidated ?? 0);
      const phase = {
        clientSent: client.sent,
        status2xx: client.status2xx,
        share2xx: client.sent ? client.status2xx / client.sent : undefined,
        client429: client.statuses['429'] ?? 0,
        latencyMs: client.latencyMs,
        backendCallsWholeRun: backendCalls,
        backendServedWholeRun: backendServed,
        cacheResults: results,
        hitRatio: answered ? hits / answered : undefined,
      };
      phases[name] = phase;
      log(
        `${name}: 2xx ${pct(phase.share2xx, 2)}, 429 ${fmt(phase.client429)}, backend calls ${fmt(backendCalls)}${cache ? `, hit ratio ${pct(phase.hitRatio, 2)}` : ''}`,
      );
      rows.push([
        name,
        `${pct(phase.share2xx, 2)} (${fmt(phase.status2xx)} of ${fmt(phase.clientSent)})`,
        fmt(phase.client429),
        `${fmt(phase.latencyMs.p99)}`,
        fmt(backendCalls),
        cache ? pct(phase.hitRatio, 2) : '–',
      ]);
    }
    const uncached = phases['spillway uncached'] as { backendCallsWholeRun: number };
    const cached = phases['spillway cached'] as { backendCallsWholeRun: number };
    const saved = uncached.backendCallsWholeRun - cached.backendCallsWholeRun;
    stops.backends = (await stopInOrder([['backends', host]])).backends;
    const md = [
      table(['target', 'client 2xx (measured seconds)', 'client 429', 'p99 ms', 'backend calls (whole run)', 'hit ratio'], rows),
      '',
      `Backend calls saved by the cache over the whole run: ${fmt(saved)} (${pct(saved / uncached.backendCallsWholeRun, 1)}).`,
    ].join('\n');
    return scenarioResult({
      scenario: 'cache-throttled',
      started,
      settingsText: `rate ${rate}/s, ${connections} connections, ${slices} slices, warm-up ${warmup}s, measured ${duration}s, ${PROMPTS} prompts`,
      settings: { ...settings, prompts: PROMPTS, backends: BACKENDS },
      record: {
        phases,
        backendCallsSaved: saved,
        spillway: Object.fromEntries(Object.entries(gateways).map(([n, g]) => [n, { log: gatewayLog(g), config: g.configText }])),
        exits: stops,
      },
      md,
      notes: Object.entries(gateways).flatMap(([n, g]) => gatewayNotes(g, stops[n] as Parameters<typeof gatewayNotes>[1], { name: n })),
      summary: { settings: { ...settings }, figures: {}, selfCheck: [], ratios: { backendCallsSaved: saved } },
    });
  });
}
