// Scenario "scaleout": (1) four replicas on one Redis in front of a throttling backend, shared
// backend state on vs off — upstream calls per client request and 429s the backend had to send;
// (2) one host, `workers: 1` vs `workers: 2` throughput (plain, and with a `store: memory`
// client bucket, whose checks then travel to the primary over IPC).

import { Agent, request as httpRequest } from 'node:http';
import { availableParallelism } from 'node:os';
import { startSimulatedBackend, type SimulatedBackend } from '../../demo/backends.ts';
import { configHead, forkTarget, startGateway, withTargets, type Gateway } from '../lib/processes.ts';
import { startRedis } from '../lib/redis.ts';
import { load, sleep, summarise } from '../lib/load.ts';
import { scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { table } from '../lib/format.ts';
import type { Log, Settings } from '../lib/rounds.ts';

export const title = 'spillway bench — scale-out (shared state across replicas, workers)';
export const intro = `
Part 1: four spillway replicas on one redis-server, each sent ${'`rate/4`'} req/s (open loop) for
\`duration\` s. Backend **primary** (priority 1) accepts 30 req/s per wall-clock second and answers
429 with \`retry-after-ms\` until the next second; **spill** (priority 2) takes the rest. Shared
state on (\`redis\` default) vs off (\`redis.shareState: false\`): with sharing, the first 429 of a
second parks the primary on every replica; without, each replica learns it itself.
Part 2: one gateway, \`workers: 1\` vs \`workers: 2\`, closed loop against a minimal origin, with and
without a \`store: memory\` bucket (checked in the primary over IPC when workers > 1).
`;

const REPLICAS = 4;

function replicaYaml(redisUrl: string, primary: string, spill: string, share: boolean, prefix: string): string {
  return `${configHead('bench/scenarios/scaleout.ts')}
redis: { url: "${redisUrl}", keyPrefix: "${prefix}", shareState: ${share} }
upstreams:
  llm:
    backends:
      - { name: primary, url: ${primary}, priority: 1 }
      - { name: spill, url: ${spill}, priority: 2 }
routes:
  - { match: { path: / }, upstream: llm }
`;
}

interface SharedRun {
  share: boolean;
  clientRequests: number;
  client2xx: number;
  upstreamCalls: number;
  callsPerRequest: number;
  primary429s: number;
  primary429sPerSecond: number;
  primaryServed: number;
  spillServed: number;
}

async function sharedRun(settings: Settings, share: boolean, log: Log): Promise<SharedRun> {
  return withTargets(async ({ track }) => {
    const redis = track(await startRedis());
    const primary: SimulatedBackend = await startSimulatedBackend({ name: 'primary', budgetPerSecond: 30 });
    const spill: SimulatedBackend = await startSimulatedBackend({ name: 'spill', budgetPerSecond: 1_000_000 });
    try {
      const prefix = `bench-${share ? 'on' : 'off'}-${Date.now()}:`;
      const replicas: Gateway[] = [];
      for (let i = 0; i < REPLICAS; i++)
        replicas.push(
          track(await startGateway(replicaYaml(redis.url, primary.url, spill.url, share, prefix), { label: `replica-${i}`, probe: false })),
        );
      // Replicas ready; the load starts on a second boundary so every window is whole.
      await sleep(1_000 - (Date.now() % 1_000));
      const rate = Math.max(REPLICAS, Math.round((settings.rate ?? 120) / REPLICAS));
      const before = { primary: primary.received, throttled: primary.throttled, spill: spill.received };
      // Evenly paced (a request every 1000/rate ms per replica, staggered): autocannon's overallRate
      // sends each second's requests in one burst, which would measure bursts, not learning.
      const paced = await Promise.all(
        replicas.map((replica, i) => pacedLoad(`${replica.url}/`, rate, settings.duration * 1_000, i / REPLICAS)),
      );
      const clientRequests = paced.reduce((n, p) => n + p.responses, 0);
      const client2xx = paced.reduce((n, p) => n + p.ok, 0);
      const upstreamCalls = primary.received - before.primary + (spill.received - before.spill);
      const primary429s = primary.throttled - before.throttled;
      const run: SharedRun = {
        share,
        clientRequests,
        client2xx,
        upstreamCalls,
        callsPerRequest: upstreamCalls / Math.max(1, clientRequests),
        primary429s,
        primary429sPerSecond: primary429s / settings.duration,
        primaryServed: primary.served,
        spillServed: spill.served,
      };
      log(`shared state ${share ? 'on ' : 'off'}: ${JSON.stringify(run)}`);
      return run;
    } finally {
      await Promise.all([primary.close(), spill.close()]);
    }
  });
}

/** Open loop: one request every 1000/rate ms for `durationMs`, starting `phase` of an interval late. */
async function pacedLoad(url: string, rate: number, durationMs: number, phase: number): Promise<{ responses: number; ok: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const every = 1_000 / rate;
  const counts = { responses: 0, ok: 0 };
  const pending: Promise<void>[] = [];
  const start = performance.now() + phase * every;
  for (let i = 0; start + i * every < start + durationMs; i++) {
    await sleep(start + i * every - performance.now());
    pending.push(
      new Promise<void>((resolve) => {
        const req = httpRequest(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            counts.responses++;
            if (res.statusCode === 200) counts.ok++;
            resolve();
          });
        });
        req.on('error', () => resolve());
        req.end();
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return counts;
}

interface WorkersRun {
  workers: number;
  limited: boolean;
  rps: number;
  p50: number | undefined;
  p99: number | undefined;
  non2xx: number;
}

function workersYaml(origin: string, workers: number, limited: boolean): string {
  return `${configHead('bench/scenarios/scaleout.ts')}
workers: ${workers}
upstreams:
  origin:
    backends: [ { url: ${origin} } ]
${limited ? 'rateLimits:\n  huge: { key: "header:x-client", capacity: 1000000000, refill: 1000000000/s, store: memory }\n' : ''}routes:
  - { match: { path: / }, upstream: origin${limited ? ', rateLimit: huge' : ''} }
`;
}

async function workersRun(settings: Settings, origin: string, workers: number, limited: boolean, log: Log): Promise<WorkersRun> {
  return withTargets(async ({ track }) => {
    const gateway = track(await startGateway(workersYaml(origin, workers, limited), { label: `workers-${workers}`, probe: false }));
    const options = { url: `${gateway.url}/`, connections: settings.connections, headers: { 'x-client': 'bench' } };
    if (settings.warmup > 0) await load({ ...options, duration: settings.warmup });
    const s = summarise(await load({ ...options, duration: settings.duration }));
    const run = { workers, limited, rps: s.rpsCompleted, p50: s.latencyMs.p50, p99: s.latencyMs.p99, non2xx: s.non2xx };
    log(`workers ${workers}${limited ? ' + memory bucket' : ''}: ${JSON.stringify(run)}`);
    return run;
  });
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  const cores = availableParallelism();
  const shared: SharedRun[] = [];
  for (let round = 0; round < settings.repeat; round++) {
    shared.push(await sharedRun(settings, false, log));
    shared.push(await sharedRun(settings, true, log));
  }
  const workers: WorkersRun[] = await withTargets(async ({ track }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const runs: WorkersRun[] = [];
    for (let round = 0; round < settings.repeat; round++)
      for (const [count, limited] of [
        [1, false],
        [2, false],
        [1, true],
        [2, true],
      ] as const)
        runs.push(await workersRun(settings, origin.ready.url, count, limited, log));
    return runs;
  });
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
  const sharedRow = (share: boolean) => {
    const runs = shared.filter((r) => r.share === share);
    return [
      share ? 'on' : 'off',
      median(runs.map((r) => r.clientRequests)).toFixed(0),
      median(runs.map((r) => r.callsPerRequest)).toFixed(3),
      median(runs.map((r) => r.primary429s)).toFixed(0),
      median(runs.map((r) => r.primary429sPerSecond)).toFixed(1),
      `${median(runs.map((r) => (100 * r.client2xx) / Math.max(1, r.clientRequests))).toFixed(1)} %`,
    ];
  };
  const workersRow = (count: number, limited: boolean) => {
    const runs = workers.filter((r) => r.workers === count && r.limited === limited);
    return [
      `${count}${limited ? ' + memory bucket' : ''}`,
      median(runs.map((r) => r.rps)).toFixed(0),
      `${median(runs.map((r) => r.p50 ?? 0))} ms`,
      `${median(runs.map((r) => r.p99 ?? 0))} ms`,
    ];
  };
  const md = [
    `### Four replicas, one Redis, a throttling backend (${settings.rate ?? 120} req/s offered, ${settings.duration} s, medians of ${settings.repeat})`,
    '',
    table(
      ['shared state', 'client requests', 'upstream calls / request', '429s at the backend', '429s / s', 'client 2xx'],
      [sharedRow(false), sharedRow(true)],
    ),
    '',
    `### Workers on one host (${cores} cores; the load generator runs on the same cores — informative only on 2)`,
    '',
    table(['workers', 'rps', 'p50', 'p99'], [workersRow(1, false), workersRow(2, false), workersRow(1, true), workersRow(2, true)]),
  ].join('\n');
  return scenarioResult({
    scenario: 'scaleout',
    started,
    settingsText: `${settings.repeat} rounds, ${settings.duration} s, ${settings.connections} connections (workers part)`,
    settings: { ...settings },
    record: { cores, shared, workers },
    md,
    notes: [`${cores} cores available`],
  });
}
