// Shared helpers of the spillway bench: child processes, load generation, /proc sampling, results.
//
// Every target (origin, spillway, @fastify/http-proxy, simulated backends) runs in its own child
// process so it does not share an event loop with autocannon, which runs in this process.

import { fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const GATEWAY_CLI = join(ROOT, 'dist', 'cli', 'main.js');
export const BACKENDS_MODULE = join(ROOT, 'dist', 'demo', 'backends.js');
const GUARD = pathToFileURL(join(BENCH_DIR, 'guard.mjs')).href;

export const HOST = '127.0.0.1';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Child processes

/** Every child still running; killed by killAll() on exit, error or watchdog. */
const children = new Set();

function trackExit(child) {
  children.add(child);
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      child.exitInfo = { code, signal };
      resolve(child.exitInfo);
    });
  });
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL. Resolves with { code, signal, forced }. */
export async function stopChild(child, graceMs = 5_000) {
  if (child.exitInfo) return { ...child.exitInfo, forced: false };
  child.kill('SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout');
  const first = await Promise.race([child.exited, timer]);
  if (first !== 'timeout') return { ...first, forced: false };
  child.kill('SIGKILL');
  const info = await child.exited;
  return { ...info, forced: true };
}

/** Temporary directories (generated gateway configs), removed when their gateway exits or by killAll(). */
const tempDirs = new Set();

/** Last-resort cleanup: SIGKILL every child we started (by pid, never by name), drop temp files. */
export function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Forks one of the bench's own child scripts (origin.mjs, fastify-proxy.mjs, backends-host.mjs).
 * The child answers { type: 'ready', ... } over IPC once it listens; `request(msg)` sends a message
 * and resolves with the child's next reply of the same type.
 */
export async function forkTarget(script, args = [], { readyTimeoutMs = 15_000, label = script } = {}) {
  const child = fork(join(BENCH_DIR, script), args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    execArgv: [],
  });
  trackExit(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: not ready after ${readyTimeoutMs} ms\n${stderr}`)), readyTimeoutMs);
    child.on('message', function onMessage(msg) {
      if (msg?.type === 'ready') {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      } else if (msg?.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${label}: ${msg.message}`));
      }
    });
    child.exited.then((info) => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited before ready (${JSON.stringify(info)})\n${stderr}`));
    });
  });
  return {
    child,
    pid: child.pid,
    ready,
    stderr: () => stderr,
    request(msg, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${label}: no answer to ${msg.type}`)), timeoutMs);
        child.on('message', function onMessage(reply) {
          if (reply?.type === msg.type) {
            clearTimeout(timer);
            child.off('message', onMessage);
            resolve(reply);
          }
        });
        child.send(msg);
      });
    },
    stop: () => stopChild(child),
  };
}

/** Pino levels worth keeping from the gateway's log. */
const WARN_OR_WORSE = /"level":(4\d|5\d|6\d)[,}]/;

/**
 * Starts the built gateway (`node dist/cli/main.js --config FILE`) and waits for its
 * `"msg":"spillway listening"` line. Its stdout is drained for the whole run (a full pipe would
 * stall the gateway); log lines are counted and warn/error lines are kept (the first 50).
 */
/** Extra node flags for the gateway child (run.mjs --gateway-node-options), e.g. --max-semi-space-size=4. */
export const gatewayNodeArgs = [];

export async function startGateway(yamlText, { readyTimeoutMs = 20_000, label = 'spillway', env = {}, nodeArgs = [] } = {}) {
  if (!existsSync(GATEWAY_CLI)) {
    throw new Error(`${GATEWAY_CLI} does not exist: run "npm run build" first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-'));
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, yamlText);
  const child = spawn(process.execPath, [...gatewayNodeArgs, ...nodeArgs, '--import', GUARD, GATEWAY_CLI, '--config', configPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // `env` adds variables (e.g. OTEL_*) on top of the bench's environment; `nodeArgs` adds node flags.
    env: { ...process.env, ...env },
  });
  trackExit(child);
  tempDirs.add(dir);
  child.exited.then(() => {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  });

  const log = { lines: 0, bytes: 0, warnings: [], warningCount: 0, byMsg: {} };
  let stderr = '';
  let pending = '';
  let onListening;
  const listening = new Promise((resolve) => (onListening = resolve));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text) => {
    log.bytes += text.length;
    pending += text;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      log.lines++;
      if (line.includes('"spillway listening"')) {
        try {
          onListening(JSON.parse(line));
        } catch {
          /* not JSON: ignore */
        }
      }
      if (WARN_OR_WORSE.test(line)) {
        log.warningCount++;
        if (log.warnings.length < 50) log.warnings.push(line.slice(0, 2_000));
        // Tally warn/error messages so a flood is summarised instead of lost.
        const msg = /"msg":"([^"]{0,200})"/.exec(line)?.[1] ?? '(no msg)';
        log.byMsg[msg] = (log.byMsg[msg] ?? 0) + 1;
      }
    }
    if (pending.length > 100_000) pending = '';
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    stderr = (stderr + text).slice(-8_000);
  });

  const ready = await Promise.race([
    listening,
    sleep(readyTimeoutMs).then(() => {
      throw new Error(`${label}: no "spillway listening" line after ${readyTimeoutMs} ms\nstderr: ${stderr}`);
    }),
    child.exited.then((info) => {
      throw new Error(`${label}: exited before listening (${JSON.stringify(info)})\nstderr: ${stderr}`);
    }),
  ]);
  if (typeof ready.url !== 'string') throw new Error(`${label}: listening line has no url: ${JSON.stringify(ready)}`);
  return {
    child,
    pid: child.pid,
    nodeArgs: [...gatewayNodeArgs],
    url: ready.url,
    admin: ready.admin,
    log,
    configText: yamlText,
    stderr: () => stderr,
    stop: () => stopChild(child),
  };
}

// ---------------------------------------------------------------------------------------------
// Load

/**
 * Runs autocannon and resolves with its result plus `errorCodes` (counts of request error codes,
 * e.g. ECONNRESET) collected from 'reqError' events.
 */
export function load(opts) {
  return new Promise((resolve, reject) => {
    const errorCodes = {};
    let sent = 0;
    const startedAt = Date.now();
    const instance = autocannon(
      {
        timeout: 10,
        ...opts,
        // Count every request written to a socket (autocannon's own `requests.sent` is approximate).
        setupClient: (client) => client.on('request', () => sent++),
      },
      (err, result) => {
        if (err) reject(err);
        else resolve({ ...result, errorCodes, sent, startedAt, finishedAt: Date.now() });
      },
    );
    instance.on('reqError', (err) => {
      const code = err?.code ?? err?.message ?? String(err);
      errorCodes[code] = (errorCodes[code] ?? 0) + 1;
    });
  });
}

/**
 * Rate-limited load in `slices` autocannon instances started 1/slices s apart, each with its share
 * of the connections and of `overallRate`, all running `seconds`.
 *
 * Why slices: autocannon's `overallRate` gives every connection a quota per second of its own
 * clock and sends it back to back at the start of that second, so one instance delivers its whole
 * rate as one burst per second, at a phase unrelated to the backends' wall-clock budget windows —
 * some windows then see far more than `overallRate` requests. N staggered instances send N smaller
 * bursts per second, which is much closer to a steady open-loop rate.
 *
 * Besides the per-instance results, every request is bucketed by the wall-clock second (window) in
 * which it was sent: sent, statuses, errors and latencies per window, so callers can measure whole
 * windows (e.g. after a warm-up) of one continuous load.
 */
export async function loadSliced({ slices = 1, connections, overallRate, seconds, ...opts }) {
  const windows = new Map();
  const bucket = (w) => {
    let b = windows.get(w);
    if (!b) windows.set(w, (b = { sent: 0, statuses: {}, lost: 0, latencies: [] }));
    return b;
  };
  const startedAt = Date.now();
  const runs = [];
  for (let i = 0; i < slices; i++) {
    const share = (total) => Math.floor(total / slices) + (i < total % slices ? 1 : 0);
    const startAt = startedAt + Math.round((i * 1000) / slices);
    runs.push(
      sleep(Math.max(0, startAt - Date.now())).then(() =>
        new Promise((resolve, reject) => {
          const errorCodes = {};
          let sent = 0;
          let reconnects = 0;
          const instance = autocannon(
            {
              timeout: 10,
              ...opts,
              connections: share(connections),
              overallRate: share(overallRate),
              duration: seconds,
              // Each connection remembers the send windows of its outstanding requests (FIFO), so a
              // response is booked in the window its request was sent in. When autocannon reconnects
              // (connection error, timeout, or the server closing the socket — the last one is silent
              // in autocannon), the outstanding requests are lost: book them as `lost`.
              setupClient: (client) => {
                client.sendWindows = [];
                client.on('request', () => {
                  sent++;
                  const w = Math.floor(Date.now() / 1000);
                  client.sendWindows.push(w);
                  bucket(w).sent++;
                });
                let connects = 0;
                const connect = client._connect;
                client._connect = function (...args) {
                  if (connects++ > 0) {
                    reconnects++;
                    for (const w of client.sendWindows.splice(0)) bucket(w).lost++;
                  }
                  return connect.apply(this, args);
                };
              },
            },
            (err, result) => {
              if (err) reject(err);
              else resolve({ ...result, errorCodes, sent, reconnects, startedAt: startAt, finishedAt: Date.now() });
            },
          );
          instance.on('response', (client, status, _bytes, responseTime) => {
            const b = bucket(client?.sendWindows?.shift() ?? Math.floor((Date.now() - responseTime) / 1000));
            b.statuses[status] = (b.statuses[status] ?? 0) + 1;
            b.latencies.push(responseTime);
          });
          instance.on('reqError', (err) => {
            const code = err?.code ?? err?.message ?? String(err);
            errorCodes[code] = (errorCodes[code] ?? 0) + 1;
          });
        }),
      ),
    );
  }
  const results = await Promise.all(runs);
  return { startedAt, finishedAt: Date.now(), slices: results.map(summarise), windows };
}

export function percentile(sorted, p) {
  if (!sorted.length) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Totals of a loadSliced() run over the windows [from, from + count): requests sent in those
 * windows and what became of them — a response (by status), lost (the connection was reset,
 * timed out or closed before the answer), or no outcome (still in flight when the load stopped).
 */
export function windowTotals(windows, from, count) {
  const statuses = {};
  let sent = 0;
  let lost = 0;
  const latencies = [];
  const perWindow = [];
  for (let w = from; w < from + count; w++) {
    const b = windows.get(w) ?? { sent: 0, statuses: {}, lost: 0, latencies: [] };
    sent += b.sent;
    lost += b.lost;
    for (const [status, n] of Object.entries(b.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
    for (const l of b.latencies) latencies.push(l);
    perWindow.push({ window: w, sent: b.sent, statuses: b.statuses, lost: b.lost });
  }
  latencies.sort((a, b) => a - b);
  const responses = Object.values(statuses).reduce((a, b) => a + b, 0);
  const status2xx = Object.entries(statuses).reduce((a, [s, n]) => a + (s >= 200 && s < 300 ? n : 0), 0);
  return {
    windows: count,
    sent,
    responses,
    lost,
    noOutcome: sent - responses - lost,
    status2xx,
    non2xx: responses - status2xx,
    statuses,
    latencyMs: {
      mean: latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : undefined,
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: latencies.at(-1),
    },
    perWindow,
  };
}

/** The figures we keep from an autocannon result. */
export function summarise(result) {
  const statusCounts = {};
  let responses = 0;
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) {
    statusCounts[status] = count;
    responses += count;
  }
  return {
    durationS: result.duration,
    rpsMean: result.requests.mean,
    rpsStddev: result.requests.stddev,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    requestsSent: result.sent,
    responses,
    rpsCompleted: responses / result.duration,
    latencyMs: {
      mean: result.latency.mean,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    status2xx: result['2xx'],
    non2xx: result.non2xx,
    statusCounts,
    errors: result.errors,
    timeouts: result.timeouts,
    errorCodes: result.errorCodes ?? {},
    reconnects: result.reconnects,
    throughputBytesPerS: result.throughput.mean,
  };
}

// ---------------------------------------------------------------------------------------------
// /proc sampling (Linux)

function readStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

function countSockets(pid) {
  try {
    let sockets = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        /* fd closed meanwhile */
      }
    }
    return sockets;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS_PER_S = 100; // USER_HZ, 100 on Linux

function cpuTicks(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return undefined;
  }
}

/**
 * CPU used by processes over an interval, in % of one core: `cpuMeter({ spillway: pid, ... })`,
 * then `.stop()`. The bench process itself (autocannon) is included as `bench`, so a saturated
 * load generator shows.
 */
export function cpuMeter(pids) {
  const t0 = Date.now();
  const bench0 = process.cpuUsage();
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuTicks(pid)]));
  return {
    stop() {
      const seconds = (Date.now() - t0) / 1000;
      const out = {};
      for (const [name, pid] of Object.entries(pids)) {
        const end = cpuTicks(pid);
        if (end !== undefined && start[name] !== undefined) out[name] = Math.round(((end - start[name]) / CLOCK_TICKS_PER_S / seconds) * 1000) / 10;
      }
      const bench = process.cpuUsage(bench0);
      out.bench = Math.round(((bench.user + bench.system) / 1e6 / seconds) * 1000) / 10;
      return out;
    },
  };
}

/**
 * Samples a process's VmRSS (and, less often, its open sockets) every `intervalMs`, keeping
 * per-phase maxima and a once-a-second series.
 * `mark(name)` starts a named phase; `stop()` returns per-phase maxima and the final VmHWM.
 */
export function sampleProcess(pid, { intervalMs = 200, socketEvery = 5 } = {}) {
  const phases = [];
  let phase = { name: 'start', samples: 0, rssMaxKb: 0, rssMinKb: Infinity, rssLastKb: 0, socketsMax: 0 };
  phases.push(phase);
  let tick = 0;
  const t0 = Date.now();
  /** One point per second: { s: seconds since start, phase, rssKb, sockets }. */
  const series = [];
  const sample = () => {
    const status = readStatus(pid);
    if (status?.rssKb !== undefined) {
      if (tick % socketEvery === 0) series.push({ s: Math.round((Date.now() - t0) / 100) / 10, phase: phase.name, rssKb: status.rssKb });
      phase.samples++;
      phase.rssMaxKb = Math.max(phase.rssMaxKb, status.rssKb);
      phase.rssMinKb = Math.min(phase.rssMinKb, status.rssKb);
      phase.rssLastKb = status.rssKb;
    }
    if (tick++ % socketEvery === 0) {
      const sockets = countSockets(pid);
      if (sockets !== undefined) {
        phase.socketsMax = Math.max(phase.socketsMax, sockets);
        if (series.length) series.at(-1).sockets = sockets;
      }
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    mark(name) {
      sample();
      phase = { name, samples: 0, rssMaxKb: 0, rssMinKb: Infinity, rssLastKb: 0, socketsMax: 0 };
      phases.push(phase);
      sample();
    },
    stop() {
      sample();
      clearInterval(timer);
      const hwmKb = readStatus(pid)?.hwmKb;
      return {
        intervalMs,
        hwmKb,
        phases: phases.map((p) => ({ ...p, rssMinKb: p.rssMinKb === Infinity ? undefined : p.rssMinKb })),
        series,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting and results

export const mb = (kb) => (kb === undefined ? undefined : Math.round((kb / 1024) * 10) / 10);

export function fmt(value, digits = 1) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value) && Math.abs(value) >= 1000) return value.toLocaleString('en-US');
  if (Number.isInteger(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const pct = (fraction, digits = 1) =>
  fraction === undefined || Number.isNaN(fraction) ? '–' : `${(fraction * 100).toFixed(digits)}%`;

export function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ':---' : '---:')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map((cell) => String(cell).replaceAll('|', '\\|')).join(' | ')} |`);
  return lines.join('\n');
}

export function environment() {
  const cpu = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model,
    totalMemMb: Math.round(totalmem() / 1024 / 1024),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    versions: Object.fromEntries(
      ['autocannon', 'fastify', '@fastify/http-proxy', 'undici'].map((name) => {
        try {
          return [name, JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version];
        } catch {
          return [name, undefined];
        }
      }),
    ),
    spillwayVersion: (() => {
      try {
        return JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
      } catch {
        return undefined;
      }
    })(),
  };
}

const MD_MARKER = '<!-- runs: newest first; written by bench/run.mjs -->';
const MD_KEEP_RUNS = 20;

/**
 * Writes bench/results/<scenario>.json (this run) and refreshes bench/results/<scenario>.md:
 * the header is rewritten, this run's section goes on top, older sections are kept (up to 20).
 */
export function writeResults(scenario, { json, title, intro, section }) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const jsonPath = join(RESULTS_DIR, `${scenario}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);

  const mdPath = join(RESULTS_DIR, `${scenario}.md`);
  let older = [];
  if (existsSync(mdPath)) {
    const text = readFileSync(mdPath, 'utf8');
    const at = text.indexOf(MD_MARKER);
    if (at >= 0) {
      older = text
        .slice(at + MD_MARKER.length)
        .split(/\n(?=## )/)
        .map((s) => s.trim())
        .filter((s) => s.startsWith('## '));
    }
  }
  const sections = [section.trim(), ...older].slice(0, MD_KEEP_RUNS);
  writeFileSync(mdPath, `# ${title}\n\n${intro.trim()}\n\n${MD_MARKER}\n\n${sections.join('\n\n')}\n`);
  return { jsonPath, mdPath };
}
