// Scenario "aggregate": what does a three-part fan-out cost compared with one pass-through call?
// One origin; one spillway with `/pass` (→ origin) and `/agg/:id` (three parts, all the origin, merged).

import { configHead, forkTarget, startGateway, withTargets } from '../lib/processes.ts';
import { allFigures, figuresTable, measureRounds, roundsText, type Log, type MeasuredTarget, type Settings } from '../lib/rounds.ts';
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { fmt, pct, table } from '../lib/format.ts';
import { sum } from '../lib/stats.ts';

export const title = 'spillway bench — aggregate';
export const intro = `
One minimal node:http origin. One spillway with a **pass-through** route (\`/pass\` → origin) and an
**aggregate** route of three parts (\`/agg/:id\` → three upstreams, each the origin, merged into one JSON
object). Interleaved rounds; per target and round: warm-up, fixed open-loop rate (spillway CPU µs and
heap bytes per client request), closed loop (rps, p99). An aggregate request makes three origin calls.
`;

const TARGETS = ['passthrough', 'aggregate-3'] as const;
const PATHS: Record<string, string> = { passthrough: '/pass', 'aggregate-3': '/agg/42' };

export function gatewayYaml(originUrl: string): string {
  return `${configHead('bench/scenarios/aggregate.ts')}upstreams:
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

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const gateway = track(await startGateway(gatewayYaml(origin.ready.url)));
    log(`origin ${origin.ready.url} (pid ${origin.pid}), spillway ${gateway.url} (pid ${gateway.pid})`);
    const originRequests = async (): Promise<number> => (await origin.request<{ requests: number }>({ type: 'stats' })).requests;
    const targets: MeasuredTarget[] = TARGETS.map((t) => ({
      name: t,
      options: { method: 'GET', url: `${gateway.url}${PATHS[t]}` },
      subject: { label: 'spillway', target: gateway },
      pids: { spillway: gateway.pid, origin: origin.pid },
    }));
    const runs = await measureRounds({
      targets,
      settings,
      log,
      before: originRequests,
      after: async (_t, before) => ({ originRequests: (await originRequests()) - (before as number) }),
      describe: (r) => `, origin calls ${String(r.originRequests)}`,
    });
    const stops = await stopInOrder([
      ['spillway', gateway],
      ['origin', origin],
    ]);
    const figures = allFigures(runs);
    const callsPerResponse = Object.fromEntries(
      TARGETS.map((t) => [
        t,
        sum(runs[t]!.map((r) => r.originRequests as number)) / Math.max(1, sum(runs[t]!.map((r) => r.closed.responses))),
      ]),
    );
    const ratios = {
      aggregateOverPassthroughRps: figures['aggregate-3']!.rps.median! / figures.passthrough!.rps.median!,
      aggregateOverPassthroughCpuPerReq: figures['aggregate-3']!.cpuUsPerReq.median! / figures.passthrough!.cpuUsPerReq.median!,
      originCallsPerResponse: callsPerResponse,
    };
    const md = [
      figuresTable(figures, { label: 'route', extra: { header: 'origin calls / response', cell: (n) => fmt(callsPerResponse[n], 2) } }),
      '',
      table(
        ['ratio (medians)', 'value'],
        [
          ['aggregate-3 / passthrough rps', pct(ratios.aggregateOverPassthroughRps)],
          ['aggregate-3 / passthrough CPU µs per request', pct(ratios.aggregateOverPassthroughCpuPerReq)],
        ],
      ),
    ].join('\n');
    return scenarioResult({
      scenario: 'aggregate',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings, method: 'GET', paths: PATHS, order: [...TARGETS] },
      record: { figures, ratios, runs, spillway: { config: gateway.configText }, exits: stops },
      md,
      notes: gatewayNotes(gateway, stops.spillway),
      summary: { settings: { ...settings }, figures, selfCheck: [], ratios },
    });
  });
}
