// Scenario "aggregate": what does a three-part fan-out cost compared with one pass-through call?
//
// One origin (origin.mjs, small JSON body). One spillway with two routes: `/pass` forwards to the
// origin; `/agg/:id` is an aggregate of three parts (three upstreams, all the origin), merged as
// an object. Same autocannon settings for both; with --repeat N the targets are interleaved and
// the figures averaged. Each client request of the aggregate makes three origin requests, so
// the useful comparison is client rps and p99 at equal connections, and origin calls per second.

import { fmt, pct, sampleProcess, startGateway, table } from './lib.mjs';
import { averageFigures, basicCells, configHead, cpuMean, gatewayNotes, measureRounds, roundsText, rssMaxMb, scenarioResult, signedMs, sum, withOrigin } from './compare.mjs';

export const title = 'spillway bench — aggregate';
export const intro = `
One minimal node:http origin (small JSON body, keep-alive). One spillway with a **pass-through** route
(\`/pass\` → origin) and an **aggregate** route of three parts (\`/agg/:id\` → three upstreams, each the
origin, merged into one JSON object). Identical autocannon settings (GET, closed loop); each measured
run follows a warm-up. Latency in ms; rps is autocannon's mean of per-second samples. An aggregate
request makes three origin calls, parsed as JSON and merged.
`;

const TARGETS = ['passthrough', 'aggregate-3'];
const PATHS = { passthrough: '/pass', 'aggregate-3': '/agg/42' };

export function gatewayYaml(originUrl) {
  return `${configHead('bench/aggregate.mjs')}upstreams:
  profile: { backends: [{ url: ${originUrl} }] }
  orders: { backends: [{ url: ${originUrl} }] }
  recs: { backends: [{ url: ${originUrl} }] }
routes:
  - match: { path: /pass }
    upstream: profile
  - match: { path: /agg/:id, methods: [GET] }
    aggregate:
      timeout: 2s
      parts:
        profile: { upstream: profile, path: "/users/{id}", required: true }
        orders:  { upstream: orders,  path: "/orders?user={id}" }
        recs:    { upstream: recs,    path: "/recs/{id}" }
`;
}

export async function run(settings, log) {
  const { duration, warmup, connections, repeat } = settings;
  const started = new Date();
  return withOrigin(async ({ origin, track, stopInOrder }) => {
    const gateway = track(await startGateway(gatewayYaml(origin.ready.url)));
    log(`origin ${origin.ready.url} (pid ${origin.pid}), spillway ${gateway.url} (pid ${gateway.pid})`);

    const rss = sampleProcess(gateway.pid);
    const originRequests = async () => (await origin.request({ type: 'stats' })).requests;
    const runs = await measureRounds({
      ...settings,
      targets: TARGETS,
      log,
      options: (target) => ({ connections, pipelining: 1, method: 'GET', url: `${gateway.url}${PATHS[target]}` }),
      pids: () => ({ origin: origin.pid, spillway: gateway.pid }),
      before: originRequests,
      after: async (_target, before) => ({ originRequests: (await originRequests()) - before }),
      describe: (extra) => `, origin calls ${extra.originRequests}`,
    });
    const memory = rss.stop();
    const stops = await stopInOrder([['spillway', gateway], ['origin', origin]]);

    const figures = averageFigures(TARGETS, runs, {
      more: (r) => ({
        originCallsPerResponse: sum(r.map((x) => x.originRequests)) / Math.max(1, sum(r.map((x) => x.responses))),
        cpuSpillwayPercent: cpuMean(r, 'spillway'),
        cpuOriginPercent: cpuMean(r, 'origin'),
        cpuBenchPercent: cpuMean(r, 'bench'),
      }),
    });
    const f = figures;
    const ratios = {
      aggregateOverPassthroughRps: f['aggregate-3'].rpsMean / f.passthrough.rpsMean,
      aggregateOverPassthroughP99: f['aggregate-3'].latencyP99Ms / f.passthrough.latencyP99Ms,
      aggregateMinusPassthroughP99Ms: f['aggregate-3'].latencyP99Ms - f.passthrough.latencyP99Ms,
      originCallsPerSecond: { passthrough: f.passthrough.rpsMean * f.passthrough.originCallsPerResponse, 'aggregate-3': f['aggregate-3'].rpsMean * f['aggregate-3'].originCallsPerResponse },
    };
    const rows = TARGETS.map((t) => [
      ...basicCells(t, f[t]),
      fmt(f[t].originCallsPerResponse, 2),
      `${fmt(f[t].cpuSpillwayPercent, 0)}% / ${fmt(f[t].cpuOriginPercent, 0)}% / ${fmt(f[t].cpuBenchPercent, 0)}%`,
    ]);
    const md = [
      table(['route', 'rps (mean)', 'p50 ms', 'p99 ms', 'responses', 'non-2xx', 'errors', 'origin calls / response', 'CPU spillway / origin / autocannon'], rows),
      '',
      table(
        ['ratio', 'value'],
        [
          ['aggregate-3 / passthrough rps', pct(ratios.aggregateOverPassthroughRps)],
          ['aggregate-3 p99 vs passthrough p99', `${fmt(ratios.aggregateOverPassthroughP99, 2)}× (${signedMs(ratios.aggregateMinusPassthroughP99Ms)})`],
          ['origin calls / s (passthrough → aggregate-3)', `${fmt(ratios.originCallsPerSecond.passthrough, 0)} → ${fmt(ratios.originCallsPerSecond['aggregate-3'], 0)}`],
          ['spillway max RSS during the run', `${fmt(rssMaxMb(memory))} MB`],
        ],
      ),
    ].join('\n');

    return scenarioResult({
      scenario: 'aggregate',
      started,
      settingsText: roundsText(settings),
      settings: { duration, warmup, connections, repeat, method: 'GET', paths: PATHS, order: TARGETS },
      record: { figures, ratios, runs, spillway: { memory, config: gateway.configText }, exits: stops },
      md,
      notes: gatewayNotes(gateway, stops.spillway),
    });
  });
}
