// Scenario "cache": what does a cache hit cost, next to forwarding the same request?
// Interleaved in one run: spillway passing GET / through (and its twin, the noise self-check),
// and spillway with `cache: { defaultTtl: 1h }` on the route (memory store), whose answers are
// hits after the first. Each cached/uncached group has its own origin so the backend calls the
// cache saved are counted exactly.

import { forkTarget, configHead, startGateway, withTargets } from '../lib/processes.ts';
import {
  allFigures,
  figuresTable,
  measureRounds,
  roundsText,
  selfCheck,
  type Log,
  type MeasuredTarget,
  type Settings,
} from '../lib/rounds.ts';
import { gatewayLog, gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { pct, table } from '../lib/format.ts';
import { relDiff } from '../lib/stats.ts';

export const title = 'spillway bench — cache';
export const intro = `
One minimal node:http origin per group. **spillway** and **spillway twin** forward every GET / (the
passthrough, and its noise self-check); **spillway cached** has \`cache: { defaultTtl: 1h }\` on the
same route (memory store): after the first request every answer is a cache hit. Targets are
interleaved; per target and round: warm-up, a fixed open-loop rate (CPU µs and V8 heap bytes per
request of the gateway), then a closed-loop run (rps, p99). Figures: median [min–max] over the rounds.
Hit ratio and backend calls saved come from the cached gateway's metrics and its origin's request count.
`;

export function gatewayYaml(originUrl: string, { cache = false } = {}): string {
  return `${configHead('bench/scenarios/cache.ts')}upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
routes:
  - match: { path: / }
    upstream: origin
${cache ? '    cache: { defaultTtl: 1h }\n' : ''}`;
}

/** Sums spillway_cache_requests_total by result from a gateway's /metrics. */
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
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const cachedOrigin = track(await forkTarget('origin.ts', [], { label: 'cached origin' }));
    const spillway = track(await startGateway(gatewayYaml(origin.ready.url), { label: 'spillway' }));
    const twin = track(await startGateway(gatewayYaml(origin.ready.url), { label: 'spillway twin' }));
    const cached = track(await startGateway(gatewayYaml(cachedOrigin.ready.url, { cache: true }), { label: 'spillway cached' }));
    log(`spillway pid ${spillway.pid}, twin ${twin.pid}, cached ${cached.pid}; origins ${origin.pid}, ${cachedOrigin.pid}`);

    const gw = (name: string, g: typeof spillway, originPid: number): MeasuredTarget => ({
      name,
      options: { method: 'GET', url: `${g.url}/`, pipelining: settings.pipelining },
      subject: { label: 'spillway', target: g },
      pids: { spillway: g.pid, origin: originPid },
    });
    const targets = [
      gw('spillway', spillway, origin.pid),
      gw('spillway twin', twin, origin.pid),
      gw('spillway cached', cached, cachedOrigin.pid),
    ];
    const runs = await measureRounds({ targets, settings, log });

    const results = await cacheResults(cached.admin);
    const originCalls = (await cachedOrigin.request<{ requests: number }>({ type: 'stats' })).requests;
    const answered = Object.values(results).reduce((a, b) => a + b, 0);
    const hits = (results.hit ?? 0) + (results.collapsed ?? 0) + (results.stale ?? 0);
    const cache = {
      answered,
      results,
      hitRatio: answered > 0 ? hits / answered : undefined,
      backendCalls: originCalls,
      backendCallsSaved: answered - originCalls,
    };

    const stops = await stopInOrder([
      ['spillway', spillway],
      ['spillway twin', twin],
      ['spillway cached', cached],
      ['origin', origin],
      ['cached origin', cachedOrigin],
    ]);
    const figures = allFigures(runs);
    const checks = [selfCheck(figures, 'spillway', 'spillway twin', settings.band)];
    const f = figures;
    const ratios = {
      hitOverPassthroughCpuPerReq: f['spillway cached']!.cpuUsPerReq.median! / f.spillway!.cpuUsPerReq.median!,
      hitOverPassthroughRps: f['spillway cached']!.rps.median! / f.spillway!.rps.median!,
      hitBytesPerReqChange: relDiff(f.spillway!.bytesPerReq.median, f['spillway cached']!.bytesPerReq.median),
    };
    const md = [
      figuresTable(figures),
      '',
      table(
        ['cache (spillway cached)', 'value'],
        [
          ['CPU µs per request, hit / passthrough', pct(ratios.hitOverPassthroughCpuPerReq)],
          ['closed-loop rps, hit / passthrough', pct(ratios.hitOverPassthroughRps)],
          ['bytes per request, hit vs passthrough', pct(ratios.hitBytesPerReqChange)],
          ['requests answered', String(answered)],
          ['hit ratio', cache.hitRatio === undefined ? '–' : pct(cache.hitRatio)],
          ['backend calls', String(originCalls)],
          ['backend calls saved', String(cache.backendCallsSaved)],
        ],
      ),
    ].join('\n');
    const gateways = { spillway, 'spillway twin': twin, 'spillway cached': cached };
    return scenarioResult({
      scenario: 'cache',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings, method: 'GET', path: '/', order: targets.map((t) => t.name) },
      record: {
        figures,
        ratios,
        cache,
        runs,
        spillway: Object.fromEntries(
          Object.entries(gateways).map(([n, g]) => [n, { log: gatewayLog(g), config: g.configText, nodeArgs: g.nodeArgs }]),
        ),
        exits: stops,
      },
      md,
      notes: Object.entries(gateways).flatMap(([n, g]) => gatewayNotes(g, stops[n], { name: n, nodeArgs: n === 'spillway' })),
      summary: {
        settings: { ...settings },
        figures,
        selfCheck: checks,
        ratios: { ...ratios, hitRatio: cache.hitRatio, backendCallsSaved: cache.backendCallsSaved },
      },
    });
  });
}
