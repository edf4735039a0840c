// Scenario "backend-loss": two backends under steady GET load (~1,000 req/s), default config (no
// retry block): one is killed with SIGKILL, started again, the other stopped gracefully (listener
// closed, keep-alive sockets ended after their request), started again. Target: 0 failed client
// requests in every phase, and each restarted backend takes traffic again.

import { once } from 'node:events';
import { configHead, forkTarget, startGateway, withTargets, type Forked } from '../lib/processes.ts';
import { clientNotes, loadSliced, sleep, sliceErrors, windowTotals, type WindowTotals } from '../lib/load.ts';
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, table } from '../lib/format.ts';

export const title = 'spillway bench — backend loss (kill, graceful stop, restart)';
export const intro = `
Two origins (each its own process) behind spillway with the **default config** (no \`retry:\` block),
\`balance: round-robin\`, steady GET load of 1000 req/s (autocannon, 50 connections in 10 staggered instances).
Phases of ${'3'} s: calm; **a killed** (SIGKILL); **a restarted** on its port; **b stopped gracefully** (SIGTERM:
listener closed, idle keep-alive sockets ended, in-flight requests finish); **b restarted**.
Target: 0 failed client requests (non-2xx, reset, no answer) in every phase; each restarted origin serves again.
`;

export const budgetSeconds = 60;

const PHASE_S = 3;
const PHASES = ['calm', 'a killed (SIGKILL)', 'a restarted', 'b stopped gracefully', 'b restarted'] as const;

function gatewayYaml(a: string, b: string): string {
  return `${configHead('bench/scenarios/backend-loss.ts')}upstreams:
  origins:
    balance: round-robin
    backends: [ { url: ${a} }, { url: ${b} } ]
routes:
  - match: { path: / }
    upstream: origins
`;
}

async function served(origin: Forked): Promise<number> {
  if (origin.child.exitCode !== null || origin.child.signalCode !== null) return 0;
  return (await origin.request<{ requests: number }>({ type: 'stats' })).requests;
}

export async function run(_settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const start = async (name: string, port = 0) =>
      track(await forkTarget('restartable-origin.ts', [String(port), name], { label: `origin-${name}` }));
    let a = await start('a');
    let b = await start('b');
    const gateway = track(await startGateway(gatewayYaml(a.ready.url, b.ready.url), { probe: false }));
    log(`origins a=${a.ready.url} b=${b.ready.url}, spillway ${gateway.url}`);
    const seconds = PHASES.length * PHASE_S + 2;
    const loading = loadSliced({ url: `${gateway.url}/`, method: 'GET', connections: 50, overallRate: 1000, slices: 10, seconds });
    const t0 = Math.ceil(Date.now() / 1000) + 1; // first whole second after the slices started
    const phaseStart = (i: number) => t0 + i * PHASE_S;
    const restartedServed: Record<string, number> = {};
    const atSecond = async (s: number) => sleep(s * 1000 - Date.now());

    await atSecond(phaseStart(1));
    a.child.kill('SIGKILL');
    await once(a.child, 'exit');
    log('a killed');
    await atSecond(phaseStart(2));
    a = await start('a', Number(a.ready.port));
    log('a restarted');
    await atSecond(phaseStart(3) - 0.2);
    restartedServed.a = await served(a);
    await atSecond(phaseStart(3));
    await b.stop();
    log('b stopped gracefully');
    await atSecond(phaseStart(4));
    b = await start('b', Number(b.ready.port));
    log('b restarted');
    await atSecond(phaseStart(5) - 0.2);
    restartedServed.b = await served(b);
    const run = await loading;
    const stops = await stopInOrder([['spillway', gateway]]);

    const phases = PHASES.map((name, i) => {
      const totals: WindowTotals = windowTotals(run.windows, phaseStart(i), PHASE_S);
      const failed = totals.sent - totals.status2xx;
      return {
        phase: name,
        sent: totals.sent,
        status2xx: totals.status2xx,
        failed,
        statuses: totals.statuses,
        lost: totals.lost,
        p99: totals.latencyMs.p99,
      };
    });
    const checks = {
      noFailures: phases.every((p) => p.failed === 0),
      aServesAfterRestart: (restartedServed.a ?? 0) > 0,
      bServesAfterRestart: (restartedServed.b ?? 0) > 0,
    };
    const rows = phases.map((p) => [
      p.phase,
      fmt(p.sent),
      fmt(p.status2xx),
      `${fmt(p.failed)} (target 0) ${p.failed === 0 ? 'ok' : '**MISSED**'}`,
      Object.entries(p.statuses)
        .filter(([s]) => s !== '200')
        .map(([s, n]) => `${s}×${n}`)
        .join(', ') || '–',
      `${fmt(p.p99, 1)} ms`,
    ]);
    rows.push([
      'restarted a / b served within their phase',
      `${fmt(restartedServed.a)} / ${fmt(restartedServed.b)}`,
      '',
      checks.aServesAfterRestart && checks.bServesAfterRestart ? 'ok' : '**MISSED**',
      '',
      '',
    ]);
    const { errorCodes, reconnects } = sliceErrors(run);
    return scenarioResult({
      scenario: 'backend-loss',
      started,
      settingsText: `1000 req/s GET, 50 connections, ${PHASES.length} phases of ${PHASE_S}s`,
      settings: { rate: 1000, connections: 50, slices: 10, phaseSeconds: PHASE_S, phases: PHASES },
      record: { checks, phases, restartedServed, config: gateway.configText, exit: stops.spillway },
      md: table(['phase', 'requests', '2xx', 'failed', 'other statuses', 'latency p99'], rows),
      notes: [...gatewayNotes(gateway, stops.spillway!), ...clientNotes(errorCodes, reconnects)],
      passed: Object.values(checks).every(Boolean),
    });
  });
}
