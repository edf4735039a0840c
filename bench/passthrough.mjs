// Scenario "passthrough": what does spillway cost on the hot path?
//
// One origin (origin.mjs), three ways to reach it, measured in one run with identical autocannon
// settings: (a) direct, (b) spillway, (c) fastify + @fastify/http-proxy (the usual Node baseline).
// Each measured run is preceded by a warm-up; with --repeat N the targets are interleaved
// (direct, spillway, proxy, direct, spillway, proxy, ...) and the figures are averaged.

import { fmt, forkTarget, pct, sampleProcess, startGateway, table } from './lib.mjs';
import { averageFigures, basicCells, configHead, cpuMean, gatewayLog, gatewayNotes, measureRounds, rssMaxMb, scenarioResult, signedMs, withOrigin } from './compare.mjs';

export const title = 'spillway bench — passthrough';
export const intro = `
One minimal node:http origin (small JSON body, keep-alive) reached three ways with identical autocannon
settings: **direct**, through **spillway** (one upstream, the origin as its only backend, route \`/\`), and
through a bare **fastify + @fastify/http-proxy** server (logger off), the usual Node.js baseline. Every target
runs in its own process; autocannon runs in the bench process. Each measured run follows a warm-up.
Latency is in ms; rps is autocannon's mean of per-second samples.
`;

const TARGETS = ['direct', 'spillway', 'fastify-proxy'];

export function gatewayYaml(originUrl) {
  return `${configHead('bench/passthrough.mjs')}upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
routes:
  - match: { path: / }
    upstream: origin
`;
}

export async function run(settings, log) {
  const { duration, warmup, connections, repeat, pipelining } = settings;
  const started = new Date();
  return withOrigin(async ({ origin, track, stopInOrder }) => {
    const gateway = track(await startGateway(gatewayYaml(origin.ready.url)));
    const proxy = track(await forkTarget('fastify-proxy.mjs', [origin.ready.url], { label: 'fastify-proxy' }));
    const urls = { direct: origin.ready.url, spillway: gateway.url, 'fastify-proxy': proxy.ready.url };
    log(`origin ${urls.direct} (pid ${origin.pid}), spillway ${urls.spillway} (pid ${gateway.pid}), fastify-proxy ${urls['fastify-proxy']} (pid ${proxy.pid})`);

    const rss = sampleProcess(gateway.pid);
    const runs = await measureRounds({
      ...settings,
      targets: TARGETS,
      log,
      options: (target) => ({ connections, pipelining, method: 'GET', url: `${urls[target]}/` }),
      pids: (target) => ({ origin: origin.pid, ...(target === 'spillway' ? { spillway: gateway.pid } : {}), ...(target === 'fastify-proxy' ? { 'fastify-proxy': proxy.pid } : {}) }),
    });
    const memory = rss.stop();

    const stops = await stopInOrder([['fastify-proxy', proxy], ['spillway', gateway], ['origin', origin]]);

    const figures = averageFigures(TARGETS, runs, {
      keys: ['rpsMean', 'latencyP50Ms', 'latencyP99Ms', 'latencyMeanMs', 'responses', 'non2xx', 'errors', 'timeouts'],
      // CPU of the proxy (or origin for direct) and of the bench process, % of one core
      more: (r, t) => ({ cpuTargetPercent: cpuMean(r, t === 'direct' ? 'origin' : t), cpuBenchPercent: cpuMean(r, 'bench') }),
    });
    const f = figures;
    const ratios = {
      spillwayOverProxyRps: f.spillway.rpsMean / f['fastify-proxy'].rpsMean,
      spillwayOverDirectRps: f.spillway.rpsMean / f.direct.rpsMean,
      proxyOverDirectRps: f['fastify-proxy'].rpsMean / f.direct.rpsMean,
      spillwayOverProxyP99: f.spillway.latencyP99Ms / f['fastify-proxy'].latencyP99Ms,
      spillwayMinusProxyP99Ms: f.spillway.latencyP99Ms - f['fastify-proxy'].latencyP99Ms,
    };

    const rows = TARGETS.map((t) => [
      ...basicCells(t, f[t]),
      `${fmt(f[t].cpuTargetPercent, 0)}% / ${fmt(f[t].cpuBenchPercent, 0)}%`,
    ]);
    const md = [
      table(['target', 'rps (mean)', 'p50 ms', 'p99 ms', 'responses', 'non-2xx', 'errors', 'CPU target / autocannon'], rows),
      '',
      table(
        ['ratio', 'value'],
        [
          ['spillway / fastify-proxy rps', pct(ratios.spillwayOverProxyRps)],
          ['spillway / direct rps', pct(ratios.spillwayOverDirectRps)],
          ['fastify-proxy / direct rps', pct(ratios.proxyOverDirectRps)],
          ['spillway p99 vs fastify-proxy p99', `${fmt(ratios.spillwayOverProxyP99, 2)}× (${signedMs(ratios.spillwayMinusProxyP99Ms)})`],
          ['spillway max RSS during the run', `${fmt(rssMaxMb(memory))} MB`],
        ],
      ),
    ].join('\n');

    return scenarioResult({
      scenario: 'passthrough',
      started,
      settingsText: `${duration}s × ${repeat}, ${connections} connections, pipelining ${pipelining}, warm-up ${warmup}s`,
      settings: { duration, warmup, connections, pipelining, repeat, method: 'GET', path: '/', order: TARGETS },
      record: { figures, ratios, runs, spillway: { memory, log: gatewayLog(gateway), config: gateway.configText, nodeArgs: gateway.nodeArgs }, exits: stops },
      md,
      notes: gatewayNotes(gateway, stops.spillway, { nodeArgs: true }),
    });
  });
}
