#!/usr/bin/env node
// spillway bench — see bench/README.md.
//
//   node bench/run.mjs [passthrough|throttling|connections|aggregate|resilience|ratelimit ...] [--duration S] [--connections N]
//                      [--warmup S] [--repeat N] [--rate R] [--pipelining N] [--check]
//
// Needs the built gateway (npm run build): dist/cli/main.js and dist/demo/backends.js.
// Every target runs in its own child process on 127.0.0.1 with a free port; all of them are
// stopped at the end, on error, on Ctrl-C, and by a watchdog if the run overruns its time budget.

import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { relative } from 'node:path';
import { BACKENDS_MODULE, GATEWAY_CLI, ROOT, gatewayNodeArgs, killAll, writeResults } from './lib.mjs';
import * as passthrough from './passthrough.mjs';
import * as throttling from './throttling.mjs';
import * as connections from './connections.mjs';
import * as aggregate from './aggregate.mjs';
import * as resilience from './resilience.mjs';
import * as telemetry from './telemetry.mjs';
import * as ratelimit from './ratelimit.mjs';

const SCENARIOS = { passthrough, throttling, connections, aggregate, resilience, telemetry, ratelimit };

const USAGE = `usage: node bench/run.mjs [scenario...] [options]

scenarios (default: all, in this order): ${Object.keys(SCENARIOS).join(', ')}

options:
  --duration S      measured seconds per run (default 10)
  --warmup S        warm-up seconds before each measured run (default 2; 0 = none)
  --connections N   client connections (default: passthrough 50, throttling 100, connections 1000, aggregate 50, ratelimit 50)
  --rate R          overall request rate for throttling (default 1000/s) and connections (default 2000/s)
  --repeat N        passthrough / aggregate / telemetry / ratelimit rounds, targets interleaved (default 1)
  --pipelining N    passthrough HTTP pipelining (default 1)
  --slices N        throttling/connections: split the rated load over N autocannon instances
                    started 1/N s apart (default 10; 1 = one instance, one burst per second)
  --backend-latency MS
                    throttling: delay of each accepted answer of the simulated backends (default 0)
  --gateway-node-options="FLAGS"
                    extra node flags for the spillway process only (e.g. --gateway-node-options=--max-semi-space-size=4)
  --check           exit 1 if a target (throttling, connections) is missed
  -h, --help        this text
`;

function fail(message) {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      repeat: { type: 'string' },
      pipelining: { type: 'string' },
      slices: { type: 'string' },
      'backend-latency': { type: 'string' },
      'gateway-node-options': { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (err) {
  fail(err.message);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function number(name, fallback, { min = 0, integer = false } = {}) {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) fail(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${raw}"`);
  return n;
}

const duration = number('duration', 10, { min: 1 });
const warmup = number('warmup', 2, { min: 0 });
const connectionsOverride = number('connections', undefined, { min: 1, integer: true });
const rateOverride = number('rate', undefined, { min: 1 });
const repeat = number('repeat', 1, { min: 1, integer: true });
const pipelining = number('pipelining', 1, { min: 1, integer: true });
const slices = number('slices', 10, { min: 1, integer: true });
const backendLatencyMs = number('backend-latency', 0, { min: 0 });

if (values['gateway-node-options']) gatewayNodeArgs.push(...values['gateway-node-options'].split(/\s+/).filter(Boolean));

const selected = positionals.length ? positionals : Object.keys(SCENARIOS);
for (const name of selected) if (!(name in SCENARIOS)) fail(`unknown scenario "${name}"`);

for (const file of [GATEWAY_CLI, BACKENDS_MODULE]) {
  if (!existsSync(file)) fail(`${relative(ROOT, file)} is missing: run "npm run build" first`);
}
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) console.warn(`bench: warning: running on node ${process.version}; the project targets node 24 (use ./node_modules/.bin/node or npm run bench)`);

const settingsFor = {
  passthrough: { duration, warmup, repeat, pipelining, connections: connectionsOverride ?? 50 },
  throttling: { duration, warmup, slices, backendLatencyMs, connections: connectionsOverride ?? 100, rate: rateOverride ?? 1000 },
  connections: { duration, warmup, slices, connections: connectionsOverride ?? 1000, rate: rateOverride ?? 2000 },
  aggregate: { duration, warmup, repeat, connections: connectionsOverride ?? 50 },
  resilience: { duration, warmup, repeat, connections: connectionsOverride ?? 50 },
  telemetry: { duration, warmup, repeat, connections: connectionsOverride ?? 50 },
  ratelimit: { duration, warmup, repeat, connections: connectionsOverride ?? 50 },
};

// Time budget: generous, but a hung target can never keep the bench (or its children) alive.
const budgetS = selected.reduce((total, name) => {
  const runs = name === 'telemetry' ? repeat * 4 : name === 'passthrough' || name === 'ratelimit' ? repeat * 3 : name === 'aggregate' || name === 'resilience' ? repeat * 2 : 1;
  return total + runs * (warmup + duration + 5) + 45;
}, 30);
const watchdog = setTimeout(() => {
  console.error(`bench: watchdog: still running after ${budgetS}s; killing every target and giving up`);
  killAll();
  process.exit(3);
}, budgetS * 1000);
watchdog.unref();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.error(`bench: ${signal}: stopping targets`);
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (name) => (line) => console.log(`[${name}] ${line}`);

/** Share of CPU time the machine spent busy over `ms` (from /proc/stat), or undefined off Linux. */
async function machineBusy(ms = 1_000) {
  const read = () => {
    try {
      const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
      const n = fields.map(Number);
      const idle = n[3] + (n[4] ?? 0);
      return { idle, total: n.reduce((a, b) => a + b, 0) };
    } catch {
      return undefined;
    }
  };
  const a = read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = read();
  if (!a || !b || b.total === a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/** Warn when other work keeps the CPUs busy: the figures would then say more about it than about spillway. */
async function warnIfBusy(name) {
  const busy = await machineBusy();
  if (busy !== undefined && busy > 0.25) {
    console.warn(`[${name}] warning: the machine is already ${(busy * 100).toFixed(0)}% busy before the run (${cpus().length} CPUs) — other processes compete with the bench; figures will be noisy`);
  }
  return busy;
}

let missed = 0;
let failed = 0;
console.log(`spillway bench: ${selected.join(', ')} — ${duration}s each, warm-up ${warmup}s, node ${process.version} (time budget ${budgetS}s)`);
for (const name of selected) {
  const scenario = SCENARIOS[name];
  console.log(`\n=== ${name} ===`);
  const busyBefore = await warnIfBusy(name);
  try {
    const result = await scenario.run(settingsFor[name], log(name));
    result.json.environment.machineBusyBefore = busyBefore === undefined ? undefined : Math.round(busyBefore * 1000) / 1000;
    if (busyBefore !== undefined && busyBefore > 0.25) {
      const note = `the machine was ${(busyBefore * 100).toFixed(0)}% busy with other work just before this run: figures are noisy`;
      result.notes = [...(result.notes ?? []), note];
      result.json.notes = [...(result.json.notes ?? []), note];
      result.section += `\n\n- ${note}`;
    }
    const { jsonPath, mdPath } = writeResults(name, {
      json: result.json,
      title: scenario.title,
      intro: scenario.intro,
      section: result.section,
    });
    console.log(`\n${result.printed}\n`);
    for (const note of result.notes ?? []) console.log(`note: ${note}`);
    console.log(`wrote ${relative(ROOT, jsonPath)}, ${relative(ROOT, mdPath)}`);
    if (result.passed === false) missed++;
  } catch (err) {
    failed++;
    console.error(`[${name}] failed: ${err instanceof Error ? err.stack ?? err.message : err}`);
    killAll();
  }
}

clearTimeout(watchdog);
if (failed) {
  console.error(`\nbench: ${failed} scenario(s) failed`);
  process.exit(1);
}
if (missed) console.log(`\nbench: ${missed} scenario(s) missed a target`);
process.exit(values.check && missed ? 1 : 0);
