// Scenario "throttling": does spillway turn three rate-limited backends into one reliable service?
//
// Three simulated Azure-OpenAI-like backends (demo/backends.ts, hosted in children/backends-host.ts):
// 300 req/s (priority 1), 300 req/s (priority 1), 600 req/s (priority 2), each budget counted per
// wall-clock second and answered 429 + retry-after(-ms) beyond it. spillway sits in front; autocannon
// sends 1000 req/s of small JSON POSTs. The two priority-1 backends can take 600/s, so ~400/s must
// spill to priority 2 — without the client seeing 429s and without a storm of retries.
//
// Method: one continuous load (warm-up + measured part + tail), measured over whole wall-clock
// seconds — the backends' budget windows. Client requests are counted by the second they were sent
// in; backend counters are snapshotted by the backends' process at every second boundary.

import { configHead, forkTarget, startGateway, withTargets, type Gateway } from '../lib/processes.ts';
import { clientNotes, firstMeasuredWindow, loadSliced, sliceErrors, windowTotals } from '../lib/load.ts';
import { cpuMeter } from '../lib/proc.ts';
import { gatewayLog, gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, pct, table } from '../lib/format.ts';
import { sum } from '../lib/stats.ts';

export const title = 'spillway bench — throttling';
export const intro = `
Three simulated backends behind spillway (\`balance: priority\`): **a** 300 req/s and **b** 300 req/s at
priority 1, **c** 600 req/s at priority 2. Over budget a backend answers 429 with \`retry-after\`,
\`retry-after-ms\` and \`x-ms-retry-after-ms\` (ms until its next one-second window). Load: small JSON POSTs at
a fixed overall rate (autocannon \`overallRate\`, split over staggered instances — see bench/README.md),
one continuous run; the figures cover the whole wall-clock seconds after the warm-up.

Targets: client 2xx ≥ 99 %, upstream calls per client request ≤ 1.15, priority-1 utilisation ≥ 95 %
(served by a + b ÷ (600 × measured seconds)).
`;

export const BACKENDS = [
  { name: 'a', budgetPerSecond: 300, priority: 1 },
  { name: 'b', budgetPerSecond: 300, priority: 1 },
  { name: 'c', budgetPerSecond: 600, priority: 2 },
];

export const TARGETS = { share2xx: 0.99, upstreamPerClient: 1.15, priority1Utilisation: 0.95 };

const BODY = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 16 });
const PATH = '/v1/chat/completions';
/** Seconds of load after the last measured window, so its requests complete before the load stops. */
const TAIL_S = 3;

export function gatewayYaml(backends: { url: string; priority: number }[]): string {
  const lines = backends.map((b) => `      - { url: ${b.url}, priority: ${b.priority} }`).join('\n');
  return `${configHead('bench/scenarios/throttling.ts')}upstreams:
  sim:
    balance: priority
    backends:
${lines}
    throttle: { statuses: [429, 503] }
routes:
  - match: { path: /v1/ }
    upstream: sim
`;
}

async function adminView(gateway: Gateway): Promise<unknown> {
  if (!gateway.admin) return undefined;
  try {
    const res = await fetch(`${gateway.admin}/admin/upstreams`, { signal: AbortSignal.timeout(3_000) });
    return { status: res.status, body: await res.json() };
  } catch (err) {
    return { error: String(err) };
  }
}

interface Counters {
  name: string;
  served: number;
  throttled: number;
  received: number;
}
interface TimelineEntry {
  window: number;
  at: number;
  backends: Counters[];
}

/** The timeline entry holding the counters at the start of window `w` (see children/backends-host.ts). */
function at(timeline: TimelineEntry[], w: number): TimelineEntry {
  const entry = timeline.find((e) => e.window === w);
  if (!entry) throw new Error(`backend counters missing for window ${w} (timeline ${timeline[0]?.window}..${timeline.at(-1)?.window})`);
  return entry;
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const { duration, warmup } = settings;
  const { rate, connections, slices } = settings;
  const started = new Date();
  const latencyMs = settings.backendLatencyMs;
  const host = await forkTarget(
    'backends-host.ts',
    [JSON.stringify(BACKENDS.map(({ name, budgetPerSecond }) => ({ name, budgetPerSecond, latencyMs })))],
    {
      label: 'backends',
    },
  );
  return withTargets(async ({ track, stopInOrder }) => {
    track(host);
    const backends = (host.ready.backends as { name: string; url: string; port: number }[]).map((b, i) => ({
      ...b,
      priority: BACKENDS[i]!.priority,
      budgetPerSecond: BACKENDS[i]!.budgetPerSecond,
    }));
    const gateway = track(await startGateway(gatewayYaml(backends)));
    log(`backends ${backends.map((b) => `${b.name}=${b.url}`).join(' ')} (pid ${host.pid}), spillway ${gateway.url} (pid ${gateway.pid})`);

    const seconds = warmup + duration + TAIL_S;
    log(
      `load ${rate} req/s over ${connections} connections in ${slices} staggered slice(s) for ${seconds}s: warm-up ${warmup}s, measured ${duration} whole seconds`,
    );
    const cpu = cpuMeter({ spillway: gateway.pid, backends: host.pid });
    const loadRun = await loadSliced({
      url: `${gateway.url}${PATH}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
      connections,
      overallRate: rate,
      slices,
      seconds,
      // autocannon "corrects" rate-limited latencies with an expected interval of ceil(1/rate) ms,
      // which invents samples; we keep the latencies actually measured.
      ignoreCoordinatedOmission: true,
      pipelining: 1,
    });
    const cpuPercent = cpu.stop();
    const { timeline } = await host.request<{ timeline: TimelineEntry[] }>({ type: 'timeline' });
    const admin = await adminView(gateway);

    const { spillway: stop } = await stopInOrder([
      ['spillway', gateway],
      ['backends', host],
    ]);

    // Measured windows: whole seconds after the last slice started and the warm-up passed.
    const first = firstMeasuredWindow(loadRun.startedAt, slices, warmup);
    const client = windowTotals(loadRun.windows, first, duration);
    const from = at(timeline, first);
    const to = at(timeline, first + duration);
    const perBackend = to.backends.map((b, i) => ({
      name: b.name,
      priority: BACKENDS[i]!.priority,
      budgetPerSecond: BACKENDS[i]!.budgetPerSecond,
      served: b.served - from.backends[i]!.served,
      throttled: b.throttled - from.backends[i]!.throttled,
      received: b.received - from.backends[i]!.received,
      shareOfServed: undefined as number | undefined,
    }));
    const served = sum(perBackend.map((b) => b.served));
    for (const b of perBackend) b.shareOfServed = served ? b.served / served : undefined;
    const upstreamCalls = sum(perBackend.map((b) => b.received));
    const priority1Capacity = sum(BACKENDS.filter((b) => b.priority === 1).map((b) => b.budgetPerSecond));
    const priority1Served = sum(perBackend.filter((b) => b.priority === 1).map((b) => b.served));

    // Per window: client arrivals and statuses, backend served, priority-1 utilisation.
    const windows: {
      window: number;
      clientSent: number;
      clientStatuses: Record<string, number>;
      clientLost: number;
      served: number[];
      received: number[];
      priority1Utilisation: number;
      boundaryLagMs: number;
    }[] = [];
    for (let w = first; w < first + duration; w++) {
      const a = at(timeline, w);
      const b = at(timeline, w + 1);
      const servedW = b.backends.map((x, i) => x.served - a.backends[i]!.served);
      const c = client.perWindow[w - first]!;
      windows.push({
        window: w,
        clientSent: c.sent,
        clientStatuses: c.statuses,
        clientLost: c.lost,
        served: servedW,
        received: b.backends.map((x, i) => x.received - a.backends[i]!.received),
        priority1Utilisation: sum(servedW.filter((_, i) => BACKENDS[i]!.priority === 1)) / priority1Capacity,
        boundaryLagMs: Math.max(Math.abs(a.at - w * 1000), Math.abs(b.at - (w + 1) * 1000)),
      });
    }
    const utils = windows.map((w) => w.priority1Utilisation);
    const sentPerWindow = windows.map((w) => w.clientSent);

    const client429 = client.statuses['429'] ?? 0;
    const figures = {
      rateTarget: rate,
      measuredSeconds: duration,
      measuredWindows: { first, last: first + duration - 1 },
      clientSent: client.sent,
      clientResponses: client.responses,
      clientLost: client.lost,
      clientNoOutcome: client.noOutcome,
      status2xx: client.status2xx,
      share2xx: client.sent ? client.status2xx / client.sent : undefined,
      client429,
      otherNon2xx: client.non2xx - client429,
      statusCounts: client.statuses,
      upstreamCalls,
      upstreamPerClient: upstreamCalls / client.sent,
      upstreamServed: served,
      backends: perBackend,
      priority1Served,
      priority1Capacity,
      priority1Utilisation: priority1Served / (priority1Capacity * duration),
      priority1UtilisationPerWindow: { min: Math.min(...utils), max: Math.max(...utils) },
      clientSentPerWindow: { min: Math.min(...sentPerWindow), max: Math.max(...sentPerWindow) },
      latencyMs: client.latencyMs,
      cpuPercent,
      windows,
    };
    const checks = {
      share2xx: (figures.share2xx ?? 0) >= TARGETS.share2xx,
      upstreamPerClient: figures.upstreamPerClient <= TARGETS.upstreamPerClient,
      priority1Utilisation: figures.priority1Utilisation >= TARGETS.priority1Utilisation,
    };
    const ok = (pass: boolean): string => (pass ? 'ok' : '**MISSED**');

    const rows = [
      [
        'client requests sent',
        `${fmt(client.sent)} (${fmt(client.sent / duration, 0)}/s; per second ${fmt(figures.clientSentPerWindow.min)}–${fmt(figures.clientSentPerWindow.max)})`,
        `${rate}/s`,
        '',
      ],
      ['client 2xx share', `${pct(figures.share2xx, 2)} (${fmt(client.status2xx)})`, '≥ 99%', ok(checks.share2xx)],
      ['client 429', fmt(client429), '', ''],
      ['other non-2xx', fmt(figures.otherNon2xx), '', ''],
      ['client requests lost (reset/timeout) / no answer', `${fmt(client.lost)} / ${fmt(figures.clientNoOutcome)}`, '', ''],
      [
        'upstream calls per client request',
        `${fmt(figures.upstreamPerClient, 3)} (${fmt(upstreamCalls)} calls)`,
        '≤ 1.15',
        ok(checks.upstreamPerClient),
      ],
      ...perBackend.map((b) => [
        `backend ${b.name} (p${b.priority}, ${b.budgetPerSecond}/s): share of served`,
        `${pct(b.shareOfServed)} (${fmt(b.served)} served, ${fmt(b.throttled)} × 429)`,
        '',
        '',
      ]),
      ['priority-1 utilisation', pct(figures.priority1Utilisation), '≥ 95%', ok(checks.priority1Utilisation)],
      [
        'priority-1 utilisation, worst / best second',
        `${pct(figures.priority1UtilisationPerWindow.min)} / ${pct(figures.priority1UtilisationPerWindow.max)}`,
        '',
        '',
      ],
      [
        'CPU (% of a core): spillway / backends / autocannon',
        `${fmt(cpuPercent.spillway, 0)}% / ${fmt(cpuPercent.backends, 0)}% / ${fmt(cpuPercent.bench, 0)}%`,
        '',
        '',
      ],
      [
        'client latency p50 / p99 / max',
        `${fmt(client.latencyMs.p50, 1)} / ${fmt(client.latencyMs.p99, 1)} / ${fmt(client.latencyMs.max, 1)} ms`,
        '',
        '',
      ],
    ];
    const md = table(['metric', 'value', 'target', ''], rows);
    const { errorCodes, reconnects } = sliceErrors(loadRun);
    const notes = gatewayNotes(gateway, stop, { nodeArgs: true, extra: clientNotes(errorCodes, reconnects) });
    const laggy = windows.filter((w) => w.boundaryLagMs > 20).length;
    if (laggy)
      notes.push(`${laggy} window boundary snapshot(s) were taken > 20 ms late (busy CPU): per-second backend figures are approximate`);
    return scenarioResult({
      scenario: 'throttling',
      started,
      settingsText: `${duration}s at ${rate} req/s, ${connections} connections, ${slices} slice(s), warm-up ${warmup}s${latencyMs ? `, backend latency ${latencyMs} ms` : ''}`,
      settings: {
        duration,
        warmup,
        tailSeconds: TAIL_S,
        rate,
        connections,
        slices,
        backendLatencyMs: latencyMs,
        method: 'POST',
        path: PATH,
        body: BODY,
        backends: BACKENDS,
      },
      record: {
        targets: TARGETS,
        checks,
        figures,
        autocannonSlices: loadRun.slices,
        clientWholeRun: windowTotals(
          loadRun.windows,
          Math.floor(loadRun.startedAt / 1000),
          Math.ceil(loadRun.finishedAt / 1000) - Math.floor(loadRun.startedAt / 1000),
        ).perWindow,
        admin,
        spillway: { log: gatewayLog(gateway), config: gateway.configText, nodeArgs: gateway.nodeArgs },
        exit: stop,
      },
      md,
      notes,
      passed: Object.values(checks).every(Boolean),
    });
  });
}
