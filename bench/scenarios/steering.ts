// Scenario "steering": does spillway stop sending to a backend that said its budget is spent,
// before the backend answers 429?
//
// Three simulated OpenAI-style backends (demo/backends.ts with openAiHeaders): 300, 300 and
// 600 req/s, each budget counted per wall-clock second; every answer carries
// x-ratelimit-limit-requests, x-ratelimit-remaining-requests and x-ratelimit-reset-requests, and a
// 429 only a whole-second Retry-After. One pool, round-robin with equal weights (the gateway is
// not told the capacities). Open-loop 1000 req/s, twice: steering on (the default) and off
// (`throttle: { predictive: false }`), each run with fresh backends.

import { configHead, forkTarget, startGateway, withTargets } from '../lib/processes.ts';
import { firstMeasuredWindow, loadSliced, windowTotals } from '../lib/load.ts';
import { scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, pct, table } from '../lib/format.ts';
import { sum } from '../lib/stats.ts';

export const title = 'spillway bench — steering before the 429';
export const intro = `
Three simulated OpenAI-style backends in one round-robin pool (equal weights): **a** 300 req/s, **b** 300 req/s,
**c** 600 req/s, budgets per wall-clock second. Every answer says what is left
(\`x-ratelimit-remaining-requests\`, \`x-ratelimit-reset-requests\`); over budget a backend answers 429 with a
whole-second \`Retry-After\` only. Open-loop load of small JSON POSTs, once with predictive steering (the
default) and once with \`throttle: { predictive: false }\`.

Targets with steering: client 2xx ≥ 99.5 %, backend 429s cut by ≥ 90 % against steering off, upstream calls per
client request ≤ 1.01.
`;

export const BACKENDS = [
  { name: 'a', budgetPerSecond: 300 },
  { name: 'b', budgetPerSecond: 300 },
  { name: 'c', budgetPerSecond: 600 },
];

export const TARGETS = { share2xx: 0.995, backend429Cut: 0.9, upstreamPerClient: 1.01 };

const BODY = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 16 });
const PATH = '/v1/chat/completions';
const TAIL_S = 2;

function gatewayYaml(backends: { url: string }[], predictive: boolean): string {
  const lines = backends.map((b) => `      - { url: ${b.url} }`).join('\n');
  return `${configHead('bench/scenarios/steering.ts')}upstreams:
  sim:
    balance: round-robin
    backends:
${lines}
    throttle: { statuses: [429, 503]${predictive ? '' : ', predictive: false'} }
routes:
  - match: { path: /v1/ }
    upstream: sim
`;
}

interface Counters {
  name: string;
  served: number;
  throttled: number;
  received: number;
}

interface ModeFigures {
  mode: 'on' | 'off';
  clientSent: number;
  status2xx: number;
  share2xx: number;
  statuses: Record<string, number>;
  backend429: number;
  upstreamCalls: number;
  upstreamPerClient: number;
  backends: Counters[];
}

async function runMode(settings: Settings, log: Log, predictive: boolean): Promise<ModeFigures> {
  const { duration, warmup, rate, connections, slices } = settings;
  const host = await forkTarget(
    'backends-host.ts',
    [JSON.stringify(BACKENDS.map((b) => ({ ...b, latencyMs: settings.backendLatencyMs, openAiHeaders: true })))],
    { label: 'backends' },
  );
  return withTargets(async ({ track, stopInOrder }) => {
    track(host);
    const backends = host.ready.backends as { name: string; url: string }[];
    const gateway = track(await startGateway(gatewayYaml(backends, predictive)));
    const seconds = warmup + duration + TAIL_S;
    log(`steering ${predictive ? 'on' : 'off'}: ${rate} req/s for ${seconds}s (warm-up ${warmup}s, measured ${duration}s)`);
    const loadRun = await loadSliced({
      url: `${gateway.url}${PATH}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
      connections,
      overallRate: rate,
      slices,
      seconds,
      ignoreCoordinatedOmission: true,
      pipelining: 1,
    });
    const { timeline } = await host.request<{ timeline: { window: number; backends: Counters[] }[] }>({ type: 'timeline' });
    await stopInOrder([
      ['spillway', gateway],
      ['backends', host],
    ]);
    const first = firstMeasuredWindow(loadRun.startedAt, slices, warmup);
    const client = windowTotals(loadRun.windows, first, duration);
    const from = timeline.find((e) => e.window === first);
    const to = timeline.find((e) => e.window === first + duration);
    if (!from || !to) throw new Error(`backend counters missing for windows ${first}..${first + duration}`);
    const perBackend = to.backends.map((b, i) => ({
      name: b.name,
      served: b.served - from.backends[i]!.served,
      throttled: b.throttled - from.backends[i]!.throttled,
      received: b.received - from.backends[i]!.received,
    }));
    const upstreamCalls = sum(perBackend.map((b) => b.received));
    return {
      mode: predictive ? 'on' : 'off',
      clientSent: client.sent,
      status2xx: client.status2xx,
      share2xx: client.sent ? client.status2xx / client.sent : 0,
      statuses: client.statuses,
      backend429: sum(perBackend.map((b) => b.throttled)),
      upstreamCalls,
      upstreamPerClient: client.sent ? upstreamCalls / client.sent : 0,
      backends: perBackend,
    };
  });
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  const on = await runMode(settings, log, true);
  const off = await runMode(settings, log, false);
  const cut = off.backend429 > 0 ? 1 - on.backend429 / off.backend429 : on.backend429 === 0 ? 1 : 0;
  const checks = {
    share2xx: on.share2xx >= TARGETS.share2xx,
    backend429Cut: cut >= TARGETS.backend429Cut,
    upstreamPerClient: on.upstreamPerClient <= TARGETS.upstreamPerClient,
  };
  const ok = (pass: boolean): string => (pass ? 'ok' : '**MISSED**');
  const perBackend = (m: ModeFigures) => m.backends.map((b) => `${b.name} ${fmt(b.served)}/${fmt(b.throttled)}`).join(', ');
  const rows = [
    ['client requests sent', fmt(on.clientSent), fmt(off.clientSent), '', ''],
    [
      'client 2xx share',
      `${pct(on.share2xx, 2)} (${fmt(on.status2xx)})`,
      `${pct(off.share2xx, 2)} (${fmt(off.status2xx)})`,
      '≥ 99.5%',
      ok(checks.share2xx),
    ],
    ['client statuses', JSON.stringify(on.statuses), JSON.stringify(off.statuses), '', ''],
    ['429s received from backends', fmt(on.backend429), fmt(off.backend429), `cut ≥ 90% (cut ${pct(cut, 1)})`, ok(checks.backend429Cut)],
    [
      'upstream calls per client request',
      `${fmt(on.upstreamPerClient, 3)} (${fmt(on.upstreamCalls)})`,
      `${fmt(off.upstreamPerClient, 3)} (${fmt(off.upstreamCalls)})`,
      '≤ 1.01',
      ok(checks.upstreamPerClient),
    ],
    ['per backend: served / 429', perBackend(on), perBackend(off), '', ''],
  ];
  const md = table(['metric', 'steering on', 'steering off', 'target (on)', ''], rows);
  return scenarioResult({
    scenario: 'steering',
    started,
    settingsText: `${settings.duration}s at ${settings.rate} req/s per mode, ${settings.connections} connections, ${settings.slices} slice(s), warm-up ${settings.warmup}s`,
    settings: { ...settings, backends: BACKENDS, body: BODY, path: PATH },
    record: { targets: TARGETS, checks, on, off, backend429Cut: cut },
    md,
    passed: Object.values(checks).every(Boolean),
  });
}
