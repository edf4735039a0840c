// Scenario "connections": how much memory does spillway need for 1,000 open keep-alive clients?
//
// spillway in front of the minimal origin; autocannon opens 1,000 keep-alive connections and sends
// a modest overall rate over them for the whole run. The gateway child's VmRSS is sampled from
// /proc/<pid>/status; its open sockets are counted from /proc/<pid>/fd to confirm the connections
// were really held open.

import { forkTarget, startGateway, withTargets } from '../lib/processes.ts';
import { clientNotes, firstMeasuredWindow, loadSliced, sleep, sliceErrors, windowTotals } from '../lib/load.ts';
import { cpuMeter, openFilesLimit, sampleProcess } from '../lib/proc.ts';
import { gatewayLog, gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, mb, table } from '../lib/format.ts';
import { gatewayYaml } from './passthrough.ts';

export const title = 'spillway bench — connections';
export const intro = `
spillway in front of a minimal node:http origin, with 1,000 keep-alive client connections held open for the
whole run (autocannon \`connections: 1000\`, modest \`overallRate\`). The gateway's VmRSS is sampled every
200 ms from /proc/<pid>/status; VmHWM is the kernel's peak RSS of the process over its life (including
warm-up). Open sockets are counted from /proc/<pid>/fd (client + upstream sockets).

Target: max RSS during the measured run < 150 MB.
`;

export const TARGET_RSS_MB = 150;
/** Seconds of load after the measured part, so its requests complete before the load stops. */
const TAIL_S = 2;

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const { duration, warmup } = settings;
  const { connections, rate, slices } = settings;
  const started = new Date();
  const limit = openFilesLimit();
  if (limit !== undefined && limit < connections * 2 + 256) {
    log(
      `warning: open-files limit is ${limit}; ${connections} connections need about ${connections * 2 + 256} (raise it with "ulimit -n 4096")`,
    );
  }
  if (Math.floor(rate / slices) < Math.ceil(connections / slices)) {
    log(
      `warning: ${rate} req/s over ${connections} connections in ${slices} slices: autocannon caps each slice's connections at its rate, so fewer connections will be open`,
    );
  }
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const gateway = track(await startGateway(gatewayYaml(origin.ready.url)));
    log(`origin ${origin.ready.url} (pid ${origin.pid}), spillway ${gateway.url} (pid ${gateway.pid})`);

    const rss = sampleProcess(gateway.pid);
    rss.mark('idle');
    await sleep(1_000);

    // One continuous load: the connections stay open from the warm-up to the end.
    const seconds = warmup + duration + TAIL_S;
    log(
      `${connections} connections at ${rate} req/s in ${slices} staggered slice(s) for ${seconds}s: warm-up ${warmup}s, measured ${duration} whole seconds`,
    );
    rss.mark('warmup');
    const marks: NodeJS.Timeout[] = [];
    const loadStarted = Date.now();
    const firstMeasured = firstMeasuredWindow(loadStarted, slices, warmup);
    marks.push(setTimeout(() => rss.mark('measured'), firstMeasured * 1000 - loadStarted));
    marks.push(setTimeout(() => rss.mark('tail'), (firstMeasured + duration) * 1000 - loadStarted));
    const cpu = cpuMeter({ spillway: gateway.pid, origin: origin.pid });
    const loadRun = await loadSliced({
      url: `${gateway.url}/`,
      method: 'GET',
      connections,
      overallRate: rate,
      slices,
      seconds,
      // report measured latencies, not autocannon's coordinated-omission estimate (see throttling.mjs)
      ignoreCoordinatedOmission: true,
      pipelining: 1,
    });
    const cpuPercent = cpu.stop();
    for (const timer of marks) clearTimeout(timer);
    rss.mark('after');
    await sleep(1_000);
    const memory = rss.stop();
    const summary = windowTotals(loadRun.windows, firstMeasuredWindow(loadRun.startedAt, slices, warmup), duration);
    const { errorCodes, reconnects } = sliceErrors(loadRun);
    summary.errorCodes = errorCodes;
    summary.rpsCompleted = summary.responses / duration;

    const { spillway: stop } = await stopInOrder([['spillway', gateway]]);

    const phase = (name: string) => memory.phases.find((p) => p.name === name)!;
    const measured = phase('measured');
    const figures = {
      connections,
      rateTarget: rate,
      responses: summary.responses,
      rpsCompleted: summary.rpsCompleted,
      status2xx: summary.status2xx,
      non2xx: summary.non2xx,
      lost: summary.lost,
      noOutcome: summary.noOutcome,
      errorCodes: summary.errorCodes,
      latencyMs: summary.latencyMs,
      cpuPercent,
      rssIdleMb: mb(phase('idle').rssMaxKb),
      rssMaxMb: mb(Math.max(...memory.phases.filter((p) => ['warmup', 'measured', 'tail'].includes(p.name)).map((p) => p.rssMaxKb))),
      rssMaxMeasuredMb: mb(measured.rssMaxKb),
      rssAfterMb: mb(memory.phases.at(-1)!.rssLastKb),
      vmHwmMb: mb(memory.hwmKb),
      socketsMax: measured.socketsMax,
      rssSamples: measured.samples,
    };
    const pass = figures.rssMaxMb !== undefined && figures.rssMaxMb < TARGET_RSS_MB;
    const rows = [
      ['open client connections', fmt(connections), '', ''],
      [
        'gateway sockets (max seen)',
        fmt(figures.socketsMax),
        `≥ ${fmt(connections)}`,
        figures.socketsMax! >= connections ? 'ok' : '**check**',
      ],
      [
        'requests sent / answered (measured part)',
        `${fmt(summary.sent)} / ${fmt(summary.responses)} (${fmt(summary.rpsCompleted, 0)}/s)`,
        `${rate}/s`,
        '',
      ],
      [
        'non-2xx / lost (reset, timeout) / no answer',
        `${fmt(summary.non2xx)} / ${fmt(summary.lost)} / ${fmt(summary.noOutcome)}`,
        '0',
        summary.non2xx + summary.lost + summary.noOutcome === 0 ? 'ok' : '**check**',
      ],
      ['latency p50 / p99', `${fmt(summary.latencyMs.p50, 1)} / ${fmt(summary.latencyMs.p99, 1)} ms`, '', ''],
      [
        'CPU (% of a core): spillway / origin / autocannon',
        `${fmt(cpuPercent.spillway, 0)}% / ${fmt(cpuPercent.origin, 0)}% / ${fmt(cpuPercent.bench, 0)}%`,
        '',
        '',
      ],
      ['RSS idle (before load)', `${fmt(figures.rssIdleMb)} MB`, '', ''],
      [
        '**RSS max under load**',
        `**${fmt(figures.rssMaxMb)} MB** (measured part: ${fmt(figures.rssMaxMeasuredMb)} MB)`,
        `< ${TARGET_RSS_MB} MB`,
        pass ? 'ok' : '**MISSED**',
      ],
      ['RSS 1 s after the run', `${fmt(figures.rssAfterMb)} MB`, '', ''],
      ['VmHWM (peak over the whole life)', `${fmt(figures.vmHwmMb)} MB`, '', ''],
    ];
    const md = table(['metric', 'value', 'target', ''], rows);
    return scenarioResult({
      scenario: 'connections',
      started,
      settingsText: `${duration}s, ${connections} connections at ${rate} req/s, ${slices} slice(s), warm-up ${warmup}s`,
      settings: {
        duration,
        warmup,
        tailSeconds: TAIL_S,
        connections,
        rate,
        slices,
        method: 'GET',
        path: '/',
        rssSampleIntervalMs: memory.intervalMs,
      },
      environmentExtra: { openFilesLimit: limit },
      record: {
        target: { rssMaxMb: TARGET_RSS_MB },
        passed: pass,
        figures,
        client: summary,
        autocannonSlices: loadRun.slices,
        memory,
        spillway: { log: gatewayLog(gateway), config: gateway.configText, nodeArgs: gateway.nodeArgs },
        exit: stop,
      },
      md,
      notes: gatewayNotes(gateway, stop, { nodeArgs: true, extra: clientNotes(errorCodes, reconnects) }),
      passed: pass,
    });
  });
}
