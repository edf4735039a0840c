// Scenario "passthrough": what does spillway cost on the hot path?
// One origin, reached directly, through spillway (defaults; a twin for the self-check; metrics
// off) and through fastify + @fastify/http-proxy, interleaved.

import { forkTarget, configHead, startGateway, withTargets } from '../lib/processes.ts';
import { gatewayTarget } from '../lib/paths.ts';
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

export const title = 'spillway bench — passthrough';
export const intro = `
One minimal node:http origin (small JSON body, keep-alive) reached five ways: **direct**, through
**spillway** (one upstream, route \`/\`, default settings: Prometheus metrics on), through an identical
**spillway twin** (a second process with the same config: the noise self-check), through **spillway metrics off**
(\`metrics.enabled: false\`) and through a bare **fastify + @fastify/http-proxy** server (logger off).
Targets are interleaved; per target and round: warm-up, a fixed open-loop rate (CPU µs and V8 heap
bytes per request of the measured process: the gateway, the proxy, or the origin for *direct*), then
a closed-loop run (rps, p99). Figures: median [min–max] over the rounds.
`;

export function gatewayYaml(originUrl: string, { metrics = true } = {}): string {
  return `${configHead('bench/scenarios/passthrough.ts')}${metrics ? '' : 'metrics: { enabled: false }\n'}upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
routes:
  - match: { path: / }
    upstream: origin
`;
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin', probe: true }));
    const url = origin.ready.url;
    const spillway = track(await startGateway(gatewayYaml(url), { label: 'spillway' }));
    const twin = track(await startGateway(gatewayYaml(url), { label: 'spillway twin' }));
    const metricsOff = track(await startGateway(gatewayYaml(url, { metrics: false }), { label: 'spillway metrics off' }));
    const baselineDir = gatewayTarget.baselineDir;
    const baseline = baselineDir
      ? track(await startGateway(gatewayYaml(url), { label: 'spillway baseline', dir: baselineDir }))
      : undefined;
    const proxy = track(await forkTarget('fastify-proxy.ts', [url], { label: 'fastify-proxy', probe: true }));
    log(
      `origin ${url} (pid ${origin.pid}); spillway pids ${spillway.pid}, twin ${twin.pid}, metrics off ${metricsOff.pid}; fastify-proxy pid ${proxy.pid}`,
    );

    const gw = (name: string, g: typeof spillway): MeasuredTarget => ({
      name,
      options: { method: 'GET', url: `${g.url}/`, pipelining: settings.pipelining },
      subject: { label: 'spillway', target: g },
      pids: { spillway: g.pid, origin: origin.pid },
    });
    const targets: MeasuredTarget[] = [
      {
        name: 'direct',
        options: { method: 'GET', url: `${url}/`, pipelining: settings.pipelining },
        subject: { label: 'origin', target: origin },
        pids: { origin: origin.pid },
      },
      gw('spillway', spillway),
      gw('spillway twin', twin),
      gw('spillway metrics off', metricsOff),
      ...(baseline ? [gw('spillway baseline', baseline)] : []),
      {
        name: 'fastify-proxy',
        options: { method: 'GET', url: `${proxy.ready.url}/`, pipelining: settings.pipelining },
        subject: { label: 'fastify-proxy', target: proxy },
        pids: { 'fastify-proxy': proxy.pid, origin: origin.pid },
      },
    ];
    const runs = await measureRounds({ targets, settings, log });
    const stops = await stopInOrder([
      ['fastify-proxy', proxy],
      ['spillway', spillway],
      ['spillway twin', twin],
      ['spillway metrics off', metricsOff],
      ...(baseline ? [['spillway baseline', baseline] as [string, typeof baseline]] : []),
      ['origin', origin],
    ]);

    const figures = allFigures(runs);
    const checks = [selfCheck(figures, 'spillway', 'spillway twin', settings.band)];
    const f = figures;
    const ratios = {
      spillwayOverProxyRps: f.spillway!.rps.median! / f['fastify-proxy']!.rps.median!,
      spillwayOverDirectRps: f.spillway!.rps.median! / f.direct!.rps.median!,
      spillwayOverProxyCpuPerReq: f.spillway!.cpuUsPerReq.median! / f['fastify-proxy']!.cpuUsPerReq.median!,
      metricsCpuPerReqCost: relDiff(f['spillway metrics off']!.cpuUsPerReq.median, f.spillway!.cpuUsPerReq.median),
      metricsBytesPerReqCost: relDiff(f['spillway metrics off']!.bytesPerReq.median, f.spillway!.bytesPerReq.median),
    };
    const md = [
      figuresTable(figures),
      '',
      table(
        ['ratio (medians)', 'value'],
        [
          ['spillway / fastify-proxy rps', pct(ratios.spillwayOverProxyRps)],
          ['spillway / direct rps', pct(ratios.spillwayOverDirectRps)],
          ['spillway / fastify-proxy CPU µs per request', pct(ratios.spillwayOverProxyCpuPerReq)],
          ['metrics on vs off: CPU µs/req, bytes/req', `${pct(ratios.metricsCpuPerReqCost)} / ${pct(ratios.metricsBytesPerReqCost)}`],
        ],
      ),
    ].join('\n');
    const gateways = { spillway, 'spillway twin': twin, 'spillway metrics off': metricsOff };
    return scenarioResult({
      scenario: 'passthrough',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings, method: 'GET', path: '/', order: targets.map((t) => t.name) },
      record: {
        figures,
        ratios,
        runs,
        spillway: Object.fromEntries(
          Object.entries(gateways).map(([n, g]) => [n, { log: gatewayLog(g), config: g.configText, nodeArgs: g.nodeArgs }]),
        ),
        exits: stops,
      },
      md,
      notes: Object.entries(gateways).flatMap(([n, g]) => gatewayNotes(g, stops[n], { name: n, nodeArgs: n === 'spillway' })),
      summary: { settings: { ...settings }, figures, selfCheck: checks, ratios },
    });
  });
}
