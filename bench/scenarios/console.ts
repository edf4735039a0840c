// Scenario "console": what does the live console cost the hot path? Three gateways with metrics
// off (the console reads the gateway's own counters): nobody watching, a twin (the noise
// self-check), and one with a console client connected to its SSE feed for the whole run.

import { configHead, forkTarget, startGateway, withTargets } from '../lib/processes.ts';
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
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { pct, table } from '../lib/format.ts';
import { relDiff } from '../lib/stats.ts';

export const title = 'spillway bench — console';
export const intro = `
One origin through three spillway processes with \`metrics.enabled: false\`: **idle** (nobody has the console
open), **idle twin** (the noise self-check) and **watched** (a console client holds \`/admin/console/stream\` open
for the whole run, so the sampler runs once a second and the tap counts status classes and latency per attempt).
Per target and round: CPU µs and V8 heap bytes per request at a fixed open-loop rate, then a closed-loop run.
`;

function gatewayYaml(originUrl: string): string {
  return `${configHead('bench/scenarios/console.ts')}metrics: { enabled: false }
upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
routes:
  - match: { path: / }
    upstream: origin
`;
}

/** A console client: reads the SSE feed until stopped; counts the views it got. */
function watch(adminUrl: string): { stop(): Promise<number> } {
  const abort = new AbortController();
  let views = 0;
  const reading = (async () => {
    const response = await fetch(`${adminUrl}/admin/console/stream`, { signal: abort.signal });
    for await (const chunk of response.body!)
      views += (
        Buffer.from(chunk)
          .toString('utf8')
          .match(/^event: state$/gm) ?? []
      ).length;
  })().catch(() => undefined);
  return {
    stop: async () => {
      abort.abort();
      await reading;
      return views;
    },
  };
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin', probe: true }));
    const url = origin.ready.url;
    const idle = track(await startGateway(gatewayYaml(url), { label: 'idle' }));
    const twin = track(await startGateway(gatewayYaml(url), { label: 'idle twin' }));
    const watched = track(await startGateway(gatewayYaml(url), { label: 'watched' }));
    const client = watch(watched.admin!);
    log(`origin ${url}; spillway idle ${idle.pid}, twin ${twin.pid}, watched ${watched.pid} (console client on ${watched.admin})`);
    const gw = (name: string, g: typeof idle): MeasuredTarget => ({
      name,
      options: { method: 'GET', url: `${g.url}/`, pipelining: settings.pipelining },
      subject: { label: 'spillway', target: g },
      pids: { spillway: g.pid, origin: origin.pid },
    });
    const targets = [gw('idle', idle), gw('idle twin', twin), gw('watched', watched)];
    const runs = await measureRounds({ targets, settings, log });
    const views = await client.stop();
    const stops = await stopInOrder([
      ['idle', idle],
      ['idle twin', twin],
      ['watched', watched],
      ['origin', origin],
    ]);
    const figures = allFigures(runs);
    const checks = [selfCheck(figures, 'idle', 'idle twin', settings.band)];
    const ratios = {
      watchedCpuPerReqCost: relDiff(figures.idle!.cpuUsPerReq.median, figures.watched!.cpuUsPerReq.median),
      watchedBytesPerReqCost: relDiff(figures.idle!.bytesPerReq.median, figures.watched!.bytesPerReq.median),
      twinCpuPerReqDiff: relDiff(figures.idle!.cpuUsPerReq.median, figures['idle twin']!.cpuUsPerReq.median),
    };
    const md = [
      figuresTable(figures),
      '',
      table(
        ['ratio (medians)', 'value'],
        [
          ['watched vs idle: CPU µs/req, bytes/req', `${pct(ratios.watchedCpuPerReqCost)} / ${pct(ratios.watchedBytesPerReqCost)}`],
          ['idle twin vs idle: CPU µs/req (noise)', pct(ratios.twinCpuPerReqDiff)],
          ['console views received by the client', String(views)],
        ],
      ),
    ].join('\n');
    const gateways = { idle, 'idle twin': twin, watched };
    return scenarioResult({
      scenario: 'console',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings, method: 'GET', path: '/', order: targets.map((t) => t.name) },
      record: { figures, ratios, runs, views, exits: stops },
      md,
      notes: Object.entries(gateways).flatMap(([n, g]) => gatewayNotes(g, stops[n], { name: n, nodeArgs: n === 'idle' })),
      summary: { settings: { ...settings }, figures, selfCheck: checks, ratios },
    });
  });
}
