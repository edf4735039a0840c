// Scenario "resilience": what do breaker, health checks, retries and the concurrency limit cost
// on the hot path when nothing fails? One origin, two spillway processes in front of it — one
// plain, one with every resilience block configured (none of them ever trips) — measured with
// identical autocannon settings; with --repeat N the two are interleaved and averaged.

import { fmt, pct, startGateway, table } from './lib.mjs';
import { averageFigures, configHead, cpuMean, measureRounds, roundsText, scenarioResult, withOrigin } from './compare.mjs';

export const title = 'spillway bench — resilience overhead';
export const intro = `
One minimal node:http origin behind two spillway processes: **plain** (no resilience blocks) and
**resilient** (breaker, health check, retry with budget and deadline, concurrency limit with queue —
limits high enough never to trip). Identical autocannon settings, closed loop; the ratio is the cost
of the resilience bookkeeping per request when nothing fails.
`;

const TARGETS = ['plain', 'resilient'];

export function gatewayYaml(originUrl, resilient) {
  return `${configHead('bench/resilience.mjs')}upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
${resilient ? `    breaker: {}
    healthCheck: { path: /, interval: 1s }
    retry: {}
    concurrency: { perBackend: 10000, queue: 1000, maxWait: 2s }
` : ''}routes:
  - match: { path: / }
    upstream: origin
`;
}

export async function run(settings, log) {
  const { duration, warmup, connections, repeat } = settings;
  const started = new Date();
  return withOrigin(async ({ origin, track, stopInOrder }) => {
    const plain = track(await startGateway(gatewayYaml(origin.ready.url, false), { label: 'spillway-plain' }));
    const resilient = track(await startGateway(gatewayYaml(origin.ready.url, true), { label: 'spillway-resilient' }));
    const gateways = { plain, resilient };
    const runs = await measureRounds({
      ...settings,
      targets: TARGETS,
      log,
      options: (target) => ({ connections, method: 'GET', url: `${gateways[target].url}/` }),
      pids: (target) => ({ origin: origin.pid, spillway: gateways[target].pid }),
      logWarmup: false,
      logCpu: false,
    });
    const figures = averageFigures(TARGETS, runs, {
      keys: ['rpsMean', 'latencyP50Ms', 'latencyP99Ms', 'non2xx', 'errors'],
      more: (r) => ({ cpuSpillwayPercent: cpuMean(r, 'spillway') }),
    });
    const ratio = figures.resilient.rpsMean / figures.plain.rpsMean;
    const md = [
      table(
        ['target', 'rps (mean)', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'CPU spillway'],
        TARGETS.map((t) => [t, fmt(figures[t].rpsMean, 0), fmt(figures[t].latencyP50Ms, 1), fmt(figures[t].latencyP99Ms, 1), fmt(figures[t].non2xx), fmt(figures[t].errors), `${fmt(figures[t].cpuSpillwayPercent, 0)}%`]),
      ),
      '',
      table(['ratio', 'value'], [['resilient / plain rps', pct(ratio)]]),
    ].join('\n');
    const stops = await stopInOrder([['resilient', resilient], ['plain', plain], ['origin', origin]]);
    return scenarioResult({
      scenario: 'resilience',
      started,
      settingsText: roundsText(settings),
      settings: { duration, warmup, connections, repeat },
      record: { figures, ratios: { resilientOverPlainRps: ratio }, runs, exits: stops, configs: { plain: plain.configText, resilient: resilient.configText } },
      md,
    });
  });
}
