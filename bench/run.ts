#!/usr/bin/env node
// spillway bench — see bench/README.md. Run by Node 24 directly (types stripped): node bench/run.ts
//
// Needs the built gateway (npm run build, or --gateway-dir DIR with DIR/dist built). Every target runs
// in its own child process on 127.0.0.1 with a free port; all are stopped at the end, on error, on
// Ctrl-C, and by a watchdog if the run overruns its time budget.

import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { relative, resolve } from 'node:path';
import { gatewayCli } from '../test/helpers/gateway-process.ts';
import { BACKENDS_MODULE, ROOT, gatewayTarget } from './lib/paths.ts';
import { gatewayNodeArgs, killAll } from './lib/processes.ts';
import { machineBusy } from './lib/proc.ts';
import { environment, writeResults, type Scenario, type ScenarioResult } from './lib/results.ts';
import { writeCombined } from './lib/combined.ts';
import type { Settings } from './lib/rounds.ts';
import * as passthrough from './scenarios/passthrough.ts';
import * as peers from './scenarios/peers.ts';
import * as throttling from './scenarios/throttling.ts';
import * as steering from './scenarios/steering.ts';
import * as connections from './scenarios/connections.ts';
import * as aggregate from './scenarios/aggregate.ts';
import * as resilience from './scenarios/resilience.ts';
import * as telemetry from './scenarios/telemetry.ts';
import * as ratelimit from './scenarios/ratelimit.ts';
import * as bursty from './scenarios/bursty.ts';
import * as backendLoss from './scenarios/backend-loss.ts';
import * as chaos from './scenarios/chaos.ts';
import * as consoleScenario from './scenarios/console.ts';
import * as scaleout from './scenarios/scaleout.ts';
import * as cache from './scenarios/cache.ts';
import * as cacheThrottled from './scenarios/cache-throttled.ts';

const SCENARIOS: Record<string, Scenario> = {
  passthrough,
  peers,
  throttling,
  steering,
  connections,
  aggregate,
  resilience,
  telemetry,
  ratelimit,
  bursty,
  'backend-loss': backendLoss,
  chaos,
  console: consoleScenario,
  cache,
  'cache-throttled': cacheThrottled,
  scaleout,
};
/** Target turns per round, for the time budget. */
const TURNS: Record<string, number> = {
  passthrough: 5,
  peers: 11,
  telemetry: 6,
  ratelimit: 4,
  aggregate: 2,
  resilience: 2,
  console: 3,
  cache: 3,
  scaleout: 8,
};

const USAGE = `usage: node bench/run.ts [scenario...] [options]

scenarios (default: all, in this order): ${Object.keys(SCENARIOS).join(', ')}

options:
  --duration S      closed-loop measured seconds per target and round (default 4)
  --warmup S        warm-up seconds before each target's turn (default 2; 0 = none)
  --repeat N        interleaved rounds (default 3); figures are median [min–max]
  --rate R          open-loop rate of the CPU/bytes run (default 1000 req/s); throttling 1000, connections 2000
  --rate-duration S seconds of the CPU/bytes run per target and round (default 4; 0 = skip)
  --band F          self-check band: twins may differ by ±F in CPU µs/req and bytes/req (default 0.05)
  --connections N   client connections (default: 50; throttling 100, connections 1000)
  --pipelining N    passthrough HTTP pipelining (default 1)
  --slices N        rated load split over N autocannon instances started 1/N s apart (default 10)
  --backend-latency MS   throttling: delay of each accepted answer of the simulated backends (default 0)
  --gateway-dir DIR      run DIR/dist/cli/main.js (another checkout, built) instead of this one's
  --baseline-dir DIR     passthrough: also measure DIR's built gateway, interleaved (before/after in one run)
  --gateway-node-options="FLAGS"   extra node flags for the spillway processes only
  --save NAME       write one combined bench/results/NAME.{json,md} (instead of the per-scenario files)
  --check           exit 1 if a target (throttling, connections) is missed or a self-check is noisy
  -h, --help        this text
`;

function fail(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const parseBenchArgs = () =>
  parseArgs({
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      repeat: { type: 'string' },
      rate: { type: 'string' },
      'rate-duration': { type: 'string' },
      band: { type: 'string' },
      connections: { type: 'string' },
      pipelining: { type: 'string' },
      slices: { type: 'string' },
      'backend-latency': { type: 'string' },
      'gateway-dir': { type: 'string' },
      'baseline-dir': { type: 'string' },
      'gateway-node-options': { type: 'string' },
      save: { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });

let parsed: ReturnType<typeof parseBenchArgs>;
try {
  parsed = parseBenchArgs();
} catch (err) {
  fail((err as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function number(name: keyof typeof values, fallback: number | undefined, { min = 0, integer = false } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    fail(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${String(raw)}"`);
  return n;
}

const duration = number('duration', 4, { min: 1 })!;
const warmup = number('warmup', 2, { min: 0 })!;
const repeat = number('repeat', 3, { min: 1, integer: true })!;
const rateOverride = number('rate', undefined, { min: 1 });
const rateDuration = number('rate-duration', 4, { min: 0 })!;
const band = number('band', 0.05, { min: 0 })!;
const connectionsOverride = number('connections', undefined, { min: 1, integer: true });
const pipelining = number('pipelining', 1, { min: 1, integer: true })!;
const slices = number('slices', 10, { min: 1, integer: true })!;
const backendLatencyMs = number('backend-latency', 0, { min: 0 })!;
if (values['gateway-node-options']) gatewayNodeArgs.push(...values['gateway-node-options'].split(/\s+/).filter(Boolean));
if (values['gateway-dir']) gatewayTarget.dir = resolve(values['gateway-dir']);
if (values['baseline-dir']) gatewayTarget.baselineDir = resolve(values['baseline-dir']);
if (values.save !== undefined && !/^[\w.-]+$/.test(values.save)) fail('--save NAME: letters, digits, "_", "-" and "." only');

const selected = positionals.length ? positionals : Object.keys(SCENARIOS);
for (const name of selected) if (!(name in SCENARIOS)) fail(`unknown scenario "${name}"`);

for (const file of [gatewayCli(gatewayTarget.dir), BACKENDS_MODULE]) {
  if (!existsSync(file))
    fail(`${file} is missing: run "npm run build" first${gatewayTarget.dir === ROOT ? '' : ` in ${gatewayTarget.dir}`}`);
}
const [major] = process.versions.node.split('.').map(Number);
if (major! < 24)
  fail(
    `running on node ${process.version}: the bench needs node 24 (type stripping); use npm run bench or ./node_modules/.bin/node bench/run.ts`,
  );

const base: Settings = {
  duration,
  warmup,
  repeat,
  rate: rateOverride ?? 1000,
  rateDuration,
  band,
  connections: connectionsOverride ?? 50,
  pipelining,
  slices,
  backendLatencyMs,
};
const settingsFor: Record<string, Settings> = {
  passthrough: base,
  peers: base,
  telemetry: base,
  ratelimit: base,
  console: base,
  cache: base,
  aggregate: base,
  resilience: base,
  throttling: { ...base, connections: connectionsOverride ?? 100, rate: rateOverride ?? 1000 },
  steering: { ...base, connections: connectionsOverride ?? 100, rate: rateOverride ?? 1000 },
  connections: { ...base, connections: connectionsOverride ?? 1000, rate: rateOverride ?? 2000 },
  'cache-throttled': { ...base, connections: connectionsOverride ?? 100, rate: rateOverride ?? 600 },
  bursty: base,
  'backend-loss': base,
  chaos: base,
  scaleout: { ...base, rate: rateOverride ?? 120 },
};

// Time budget: generous, but a hung target can never keep the bench (or its children) alive.
const budgetS = selected.reduce((total, name) => {
  const turns = TURNS[name];
  const fixed = SCENARIOS[name]!.budgetSeconds;
  const perRun = fixed ?? (turns ? repeat * turns * (warmup + duration + rateDuration + 4) : warmup + duration + 10);
  return total + perRun + 45;
}, 30);
const watchdog = setTimeout(() => {
  console.error(`bench: watchdog: still running after ${budgetS}s; killing every target and giving up`);
  killAll();
  process.exit(3);
}, budgetS * 1000);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`bench: ${signal}: stopping targets`);
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (name: string) => (line: string) => console.log(`[${name}] ${line}`);

let missed = 0;
let failed = 0;
let noisy = 0;
const results: Record<string, ScenarioResult> = {};
console.log(
  `spillway bench: ${selected.join(', ')} — gateway ${relative(ROOT, gatewayTarget.dir) || '.'}; ${repeat} rounds, warm-up ${warmup}s, ${rateDuration}s at a fixed rate, ${duration}s closed loop; node ${process.version} (time budget ${budgetS}s)`,
);
for (const name of selected) {
  const scenario = SCENARIOS[name]!;
  console.log(`\n=== ${name} ===`);
  const busy = await machineBusy();
  if (busy !== undefined && busy > 0.25)
    console.warn(
      `[${name}] warning: the machine is already ${(busy * 100).toFixed(0)}% busy before the run (${cpus().length} CPUs): closed-loop rps will be noisy; CPU µs/req and bytes/req much less so`,
    );
  try {
    const result = await scenario.run(settingsFor[name]!, log(name));
    result.json.environment.machineBusyBefore = busy === undefined ? undefined : Math.round(busy * 1000) / 1000;
    if (busy !== undefined && busy > 0.25) {
      const note = `the machine was ${(busy * 100).toFixed(0)}% busy with other work just before this run`;
      result.notes.push(note); // the same array as result.json.notes
      result.section += `\n- ${note}`;
    }
    results[name] = result;
    console.log(`\n${result.printed}\n`);
    for (const note of result.notes) console.log(`note: ${note}`);
    if (values.save === undefined) {
      const { jsonPath, mdPath } = writeResults(name, {
        json: result.json,
        title: scenario.title,
        intro: scenario.intro,
        section: result.section,
      });
      console.log(`wrote ${relative(ROOT, jsonPath)}, ${relative(ROOT, mdPath)}`);
    }
    if (result.passed === false) missed++;
    if (result.noisy) noisy++;
  } catch (err) {
    failed++;
    console.error(`[${name}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAll();
  }
}
if (values.save !== undefined && Object.keys(results).length) {
  const { jsonPath, mdPath } = writeCombined(values.save, results, environment());
  console.log(`\nwrote ${relative(ROOT, jsonPath)}, ${relative(ROOT, mdPath)}`);
}

clearTimeout(watchdog);
if (noisy)
  console.log(`\nbench: ${noisy} scenario(s) flagged NOISY by the self-check (twins differ by more than ±${(band * 100).toFixed(0)}%)`);
if (failed) {
  console.error(`\nbench: ${failed} scenario(s) failed`);
  process.exit(1);
}
if (missed) console.log(`\nbench: ${missed} scenario(s) missed a target`);
process.exit(values.check && (missed || noisy) ? 1 : 0);
