// Scenario "resilience": what do breaker, health checks, retries and the concurrency limit cost on
// the hot path when nothing fails? One origin, two spillway processes: plain and resilient.

import { configHead, forkTarget, startGateway, withTargets } from '../lib/processes.ts';
import { allFigures, figuresTable, measureRounds, roundsText, type Log, type MeasuredTarget, type Settings } from '../lib/rounds.ts';
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { pct, table } from '../lib/format.ts';
import { relDiff } from '../lib/stats.ts';

export const title = 'spillway bench — resilience overhead';
export const intro = `
One minimal node:http origin behind two spillway processes: **plain** (no resilience blocks) and
**resilient** (breaker, health check, retry with budget and deadline, concurrency limit with queue —
limits high enough never to trip). Interleaved rounds; per target and round: warm-up, fixed open-loop
rate (CPU µs and heap bytes per request), closed loop (rps, p99).
`;

const TARGETS = ['plain', 'resilient'] as const;

export function gatewayYaml(originUrl: string, resilient: boolean): string {
  return `${configHead('bench/scenarios/resilience.ts')}upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
${
  resilient
    ? `    breaker: {}
    healthCheck: { path: /, interval: 1s }
    retry: {}
    concurrency: { perBackend: 10000, queue: 1000, maxWait: 2s }
`
    : ''
}routes:
  - match: { path: / }
    upstream: origin
`;
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const plain = track(await startGateway(gatewayYaml(origin.ready.url, false), { label: 'spillway-plain' }));
    const resilient = track(await startGateway(gatewayYaml(origin.ready.url, true), { label: 'spillway-resilient' }));
    const gateways = { plain, resilient };
    const targets: MeasuredTarget[] = TARGETS.map((t) => ({
      name: t,
      options: { method: 'GET', url: `${gateways[t].url}/` },
      subject: { label: 'spillway', target: gateways[t] },
      pids: { spillway: gateways[t].pid, origin: origin.pid },
    }));
    const runs = await measureRounds({ targets, settings, log });
    const stops = await stopInOrder([
      ['resilient', resilient],
      ['plain', plain],
      ['origin', origin],
    ]);
    const figures = allFigures(runs);
    const ratios = {
      resilientVsPlainCpuUsPerReq: relDiff(figures.plain!.cpuUsPerReq.median, figures.resilient!.cpuUsPerReq.median),
      resilientVsPlainBytesPerReq: relDiff(figures.plain!.bytesPerReq.median, figures.resilient!.bytesPerReq.median),
      resilientOverPlainRps: figures.resilient!.rps.median! / figures.plain!.rps.median!,
    };
    const md = [
      figuresTable(figures),
      '',
      table(
        ['resilient vs plain (medians)', 'value'],
        [
          ['CPU µs/req', pct(ratios.resilientVsPlainCpuUsPerReq)],
          ['bytes/req', pct(ratios.resilientVsPlainBytesPerReq)],
          ['rps resilient / plain', pct(ratios.resilientOverPlainRps)],
        ],
      ),
    ].join('\n');
    return scenarioResult({
      scenario: 'resilience',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings },
      record: { figures, ratios, runs, exits: stops, configs: { plain: plain.configText, resilient: resilient.configText } },
      md,
      notes: [
        ...gatewayNotes(plain, stops.plain, { name: 'spillway (plain)' }),
        ...gatewayNotes(resilient, stops.resilient, { name: 'spillway (resilient)' }),
      ],
      summary: { settings: { ...settings }, figures, selfCheck: [], ratios },
    });
  });
}
