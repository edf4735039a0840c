// Scenario "bursty": one bursty client against three throttling backends — with and without hold
// until ready, with whole-second Retry-After only and with retry-after-ms.
//
// One autocannon instance (no slices), 100 connections, overallRate 1000, POST, 10 s, through one
// upstream (`balance: priority`) of three backends, each in its own process: priority 1 two with
// fixed one-second windows of 300 requests, priority 2 one with 600 (1200/s in all, 83 % used).
// Beyond its window a backend answers 429 with `Retry-After` (whole seconds, rounded up), plus
// `retry-after-ms` in the `ms` variants. autocannon sends each second's quota of every connection
// back to back, so every second starts with a burst: whenever every backend is cooling for a few
// milliseconds, the requests of that instant find no backend ready.

import { configHead, forkTarget, startGateway, withTargets, type Forked } from '../lib/processes.ts';
import { clientNotes, loadSliced, sliceErrors, wholeRun, windowTotals } from '../lib/load.ts';
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, pct, table } from '../lib/format.ts';
import { sum } from '../lib/stats.ts';

export const title = 'spillway bench — bursty throttling (hold until ready)';
export const intro = `
One bursty client (one autocannon instance, 100 connections, \`overallRate: 1000\`, POST; requests sent in the first 10 s are counted, the load runs 3 s longer so held ones are answered) through one
upstream of three simulated backends, each in its own process: **a** and **b** 300 req/s at priority 1, **c**
600 req/s at priority 2 (fixed wall-clock windows; 429 beyond them). Four variants: 429 hints with
\`retry-after-ms\` (exact) or whole-second \`Retry-After\` only, each without and with
\`throttle.hold: { maxWait: 2s }\`.

Targets (with hold): whole-second hints ≥ 99 % 2xx, ≤ 1.05 upstream calls per request, hold time p99 ≤ 1 s;
ms hints ≥ 99.5 % 2xx. Without hold: reported beside, no target.
`;

export const budgetSeconds = 4 * 25;

const BACKENDS = [
  { name: 'a', budgetPerSecond: 300, priority: 1 },
  { name: 'b', budgetPerSecond: 300, priority: 1 },
  { name: 'c', budgetPerSecond: 600, priority: 2 },
];
const SECONDS = 10;
/** Load goes on this long after the measured seconds, so held requests sent in them are answered. */
const TAIL_S = 3;
const BODY = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 16 });
const PATH = '/v1/chat/completions';

type Hints = 'ms' | 'seconds';
const VARIANTS: { hints: Hints; hold: boolean }[] = [
  { hints: 'seconds', hold: false },
  { hints: 'seconds', hold: true },
  { hints: 'ms', hold: false },
  { hints: 'ms', hold: true },
];

function gatewayYaml(backends: { url: string; priority: number }[], hold: boolean): string {
  return `${configHead('bench/scenarios/bursty.ts')}upstreams:
  sim:
    balance: priority
    backends:
${backends.map((b) => `      - { url: ${b.url}, priority: ${b.priority} }`).join('\n')}
    throttle: { statuses: [429, 503]${hold ? ', hold: { maxWait: 2s, queue: 1000 }' : ''} }
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

async function counters(hosts: Forked[]): Promise<Counters[]> {
  const replies = await Promise.all(hosts.map((h) => h.request<{ backends: Counters[] }>({ type: 'stats' })));
  return replies.flatMap((r) => r.backends);
}

/** Upper bound of the histogram bucket holding quantile q of spillway_hold_seconds (all outcomes). */
export function holdQuantile(metrics: string, q: number): { count: number; le: number | undefined } {
  const buckets = new Map<number, number>();
  for (const line of metrics.split('\n')) {
    const m = /^spillway_hold_seconds_bucket\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(m[2]));
  }
  const bounds = [...buckets.keys()].sort((x, y) => x - y);
  const count = buckets.get(Infinity) ?? 0;
  if (count === 0) return { count, le: undefined };
  for (const bound of bounds) if (buckets.get(bound)! >= q * count) return { count, le: bound };
  return { count, le: Infinity };
}

async function variant(hints: Hints, hold: boolean, log: Log) {
  return withTargets(async ({ track, stopInOrder }) => {
    const hosts = await Promise.all(
      BACKENDS.map(async ({ name, budgetPerSecond }) =>
        track(await forkTarget('backends-host.ts', [JSON.stringify([{ name, budgetPerSecond, hints }])], { label: `backend-${name}` })),
      ),
    );
    const backends = hosts.map((h, i) => ({ ...(h.ready.backends as { url: string }[])[0]!, priority: BACKENDS[i]!.priority }));
    const gateway = track(await startGateway(gatewayYaml(backends, hold), { probe: false }));
    log(`${hints} hints, hold ${hold ? 'on' : 'off'}: spillway ${gateway.url}`);
    const before = await counters(hosts);
    const run = await loadSliced({
      url: `${gateway.url}${PATH}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
      connections: 100,
      overallRate: 1000,
      slices: 1,
      seconds: SECONDS + TAIL_S,
      ignoreCoordinatedOmission: true,
      pipelining: 1,
    });
    const after = await counters(hosts);
    const metrics = gateway.admin ? await (await fetch(`${gateway.admin}/metrics`)).text() : '';
    const stops = await stopInOrder([['spillway', gateway]]);
    // Requests sent in the first SECONDS wall-clock seconds (the first one partial); calls over the whole run.
    const client = windowTotals(run.windows, Math.floor(run.startedAt / 1000), SECONDS);
    const whole = wholeRun(run);
    const received = sum(after.map((b, i) => b.received - before[i]!.received));
    const served = after.map((b, i) => b.served - before[i]!.served);
    const p99 = holdQuantile(metrics, 0.99);
    const p50 = holdQuantile(metrics, 0.5);
    const { errorCodes, reconnects } = sliceErrors(run);
    return {
      hints,
      hold,
      sent: client.sent,
      status2xx: client.status2xx,
      share2xx: client.sent ? client.status2xx / client.sent : undefined,
      statuses: client.statuses,
      lost: client.lost,
      upstreamCalls: received,
      upstreamPerClient: whole.responses ? received / whole.responses : undefined,
      served,
      held: p99.count,
      holdP50LeS: p50.le,
      holdP99LeS: p99.le,
      latencyMs: client.latencyMs,
      notes: [...gatewayNotes(gateway, stops.spillway!), ...clientNotes(errorCodes, reconnects)],
      config: gateway.configText,
    };
  });
}

export async function run(_settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  const results: Awaited<ReturnType<typeof variant>>[] = [];
  for (const { hints, hold } of VARIANTS) results.push(await variant(hints, hold, log));
  const get = (hints: Hints, hold: boolean) => results.find((r) => r.hints === hints && r.hold === hold)!;
  const secHold = get('seconds', true);
  const msHold = get('ms', true);
  const checks = {
    secondsHold2xx: (secHold.share2xx ?? 0) >= 0.99,
    secondsHoldCalls: (secHold.upstreamPerClient ?? Infinity) <= 1.05,
    secondsHoldP99: secHold.holdP99LeS !== undefined && secHold.holdP99LeS <= 1,
    msHold2xx: (msHold.share2xx ?? 0) >= 0.995,
  };
  const ok = (pass: boolean | undefined): string => (pass === undefined ? '' : pass ? 'ok' : '**MISSED**');
  const rows = results.map((r) => {
    const target2xx = r.hold ? (r.hints === 'seconds' ? '≥ 99%' : '≥ 99.5%') : '';
    const pass2xx = r.hold ? (r.hints === 'seconds' ? checks.secondsHold2xx : checks.msHold2xx) : undefined;
    return [
      `${r.hints === 'ms' ? 'retry-after-ms' : 'whole-second Retry-After'}, hold ${r.hold ? 'on' : 'off'}`,
      `${fmt(r.sent)}`,
      `${pct(r.share2xx, 2)} ${target2xx} ${ok(pass2xx)}`,
      fmt(r.statuses['429'] ?? 0),
      `${fmt(r.upstreamPerClient, 3)}${r.hold && r.hints === 'seconds' ? ` ≤ 1.05 ${ok(checks.secondsHoldCalls)}` : ''}`,
      r.hold
        ? `${fmt(r.held)} held; p50 ≤ ${fmt(r.holdP50LeS, 3)} s, p99 ≤ ${fmt(r.holdP99LeS, 3)} s${r.hints === 'seconds' ? ` (target ≤ 1 s ${ok(checks.secondsHoldP99)})` : ''}`
        : '–',
      `${fmt(r.latencyMs.p50, 1)} / ${fmt(r.latencyMs.p99, 1)} ms`,
    ];
  });
  const md = table(
    ['variant', 'requests', 'client 2xx', '429', 'upstream calls / request', 'hold time (histogram bucket)', 'latency p50 / p99'],
    rows,
  );
  return scenarioResult({
    scenario: 'bursty',
    started,
    settingsText: `${SECONDS}s at 1000 req/s, 100 connections, one autocannon instance, 4 variants`,
    settings: { seconds: SECONDS, rate: 1000, connections: 100, slices: 1, backends: BACKENDS, method: 'POST', path: PATH },
    record: { checks, variants: results.map(({ notes: _n, ...r }) => r) },
    md,
    notes: results.flatMap((r) => r.notes.map((n) => `${r.hints}/${r.hold ? 'hold' : 'no hold'}: ${n}`)),
    passed: Object.values(checks).every(Boolean),
  });
}
