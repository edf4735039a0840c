// Interleaved measurement of several targets: rounds A B C A B C …, each target's turn being
//   1. a warm-up (closed loop, `warmup` s),
//   2. a rated run: a fixed open-loop rate well below saturation (`rate` req/s for `rateDuration` s),
//      over which the subject process's CPU time and heap allocation are read → CPU µs and bytes
//      per request answered (figures that do not swing with how busy the machine is),
//   3. a closed-loop run (`duration` s): max throughput (rps) and latency, which do swing.
// Figures are reported as median [min–max] over the rounds. Twin targets (two identical spillway
// processes) give the self-check: if their medians differ by more than `band`, the run is "noisy".

import type { Options } from 'autocannon';
import { cpuMeter, type CpuPercent } from './proc.ts';
import { load, summarise, type Summary } from './load.ts';
import type { Target } from './processes.ts';
import { cpuBetween, cpuSnapshot, ratedRun, type RatedRun } from './rated.ts';
import { relDiff, spread, sum, type Spread } from './stats.ts';

export type { RatedRun } from './rated.ts';
import { fmt, signedPct, spreadText, table } from './format.ts';

export interface Settings {
  /** Closed-loop measured seconds. */
  duration: number;
  /** Warm-up seconds before each target's turn. */
  warmup: number;
  /** Rounds. */
  repeat: number;
  connections: number;
  /** Open-loop rate of the rated run (req/s) — per-request CPU and bytes. */
  rate: number;
  /** Seconds of the rated run; 0 skips it. */
  rateDuration: number;
  /** Self-check band: twins' CPU µs/req and bytes/req may differ by this fraction (0.05 = ±5%). */
  band: number;
  pipelining: number;
  slices: number;
  backendLatencyMs: number;
}

export type Log = (line: string) => void;

export interface MeasuredTarget {
  name: string;
  /** autocannon options (url, method, requests, …) without duration and connections. */
  options: Omit<Options, 'duration' | 'connections'>;
  /** The process whose CPU µs and bytes per request are measured (spillway, the proxy, the origin). */
  subject?: { label: string; target: Target };
  /** Processes whose CPU % of one core is metered during the closed-loop run. */
  pids: Record<string, number>;
}

export interface RoundRun {
  round: number;
  rated: RatedRun | undefined;
  /** cpuUsPerReq: the subject's CPU over the closed-loop run ÷ its responses (with `closedCpu`). */
  closed: Summary & { cpuPercent: CpuPercent; cpuUsPerReq?: number | undefined };
  [extra: string]: unknown;
}

/**
 * Measures `targets` in `repeat` interleaved rounds. Returns { target: [run per round] }.
 * `before(target)` / `after(target, state)` wrap the closed-loop run (after's result is merged
 * into the round's run); `describe(run)` adds text to its log line.
 */
export async function measureRounds({
  targets,
  settings: s,
  log,
  rated = true,
  closedCpu = false,
  before,
  after,
  describe,
}: {
  targets: MeasuredTarget[];
  settings: Settings;
  log: Log;
  rated?: boolean;
  /** Also read the subject's CPU time over the closed-loop run (CPU µs per request at saturation). */
  closedCpu?: boolean;
  before?: (t: MeasuredTarget) => Promise<unknown>;
  after?: (t: MeasuredTarget, state: unknown) => Promise<Record<string, unknown>>;
  describe?: (run: RoundRun) => string;
}): Promise<Record<string, RoundRun[]>> {
  const runs: Record<string, RoundRun[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
  const doRated = rated && s.rateDuration > 0;
  for (let round = 1; round <= s.repeat; round++) {
    for (const t of targets) {
      const tag = `[round ${round}/${s.repeat}] ${t.name}`;
      const opts = { ...t.options, connections: s.connections, pipelining: t.options.pipelining ?? 1 };
      if (s.warmup > 0) await load({ ...opts, duration: s.warmup } as Options);
      let ratedResult: RatedRun | undefined;
      if (doRated) {
        // Let the warm-up's garbage collection and JIT work finish before the CPU is counted.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        ratedResult = await ratedRun(t, s);
        log(
          `${tag}: ${s.rate} req/s × ${s.rateDuration}s → ${fmt(ratedResult.responses)} answered, ${t.subject?.label ?? '?'} ${fmt(ratedResult.cpuUsPerReq, 1)} CPU µs/req, ${fmt(ratedResult.bytesPerReq, 0)} bytes/req, p99 ${fmt(ratedResult.latencyMs.p99, 1)} ms`,
        );
      }
      const state = before ? await before(t) : undefined;
      const subject = closedCpu ? t.subject?.target : undefined;
      const cpuBefore = subject ? await cpuSnapshot(subject) : undefined;
      const meter = cpuMeter(t.pids);
      const summary = summarise(await load({ ...opts, duration: s.duration } as Options));
      const cpuPercent = meter.stop();
      const cpuUs = subject ? cpuBetween(cpuBefore, await cpuSnapshot(subject)) : undefined;
      const closed: RoundRun['closed'] = {
        ...summary,
        cpuPercent,
        ...(subject ? { cpuUsPerReq: cpuUs === undefined || !summary.responses ? undefined : cpuUs / summary.responses } : {}),
      };
      const extra = after ? await after(t, state) : {};
      const run: RoundRun = { round, rated: ratedResult, closed, ...extra };
      runs[t.name]!.push(run);
      log(
        `${tag}: closed loop ${s.duration}s → ${fmt(closed.rpsMean, 0)} rps${subject ? ` (${fmt(closed.cpuUsPerReq, 1)} CPU µs/req)` : ''}, p99 ${closed.latencyMs.p99} ms, non-2xx ${closed.non2xx}, errors ${closed.errors}; CPU % ${JSON.stringify(closed.cpuPercent)}${describe ? describe(run) : ''}`,
      );
    }
  }
  return runs;
}

export interface TargetFigures {
  /** Closed loop: autocannon's mean of per-second samples, per round. */
  rps: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  responses: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Median CPU % of one core per metered process during the closed-loop runs. */
  cpuPercent: Record<string, number | undefined>;
  /** Rated run (open loop at `rate`). */
  subject: string | undefined;
  cpuUsPerReq: Spread;
  bytesPerReq: Spread;
  ratedP99Ms: Spread;
  ratedAchievedRps: Spread;
  ratedNon2xx: number;
  ratedErrors: number;
  gcCostUsPerReq: Spread;
  /** Closed loop (with `closedCpu`): subject CPU ÷ responses at saturation. */
  closedCpuUsPerReq: Spread;
  /** Rated run: the subject's event-loop delay (probe), ms. */
  eventLoopP99Ms: Spread;
  eventLoopMaxMs: Spread;
}

export function figuresOf(runs: RoundRun[]): TargetFigures {
  const rated = runs.map((r) => r.rated).filter((r): r is RatedRun => r !== undefined);
  const cpuNames = new Set(runs.flatMap((r) => Object.keys(r.closed.cpuPercent)));
  return {
    rps: spread(runs.map((r) => r.closed.rpsMean)),
    p50Ms: spread(runs.map((r) => r.closed.latencyMs.p50)),
    p99Ms: spread(runs.map((r) => r.closed.latencyMs.p99)),
    responses: sum(runs.map((r) => r.closed.responses)),
    non2xx: sum(runs.map((r) => r.closed.non2xx)),
    errors: sum(runs.map((r) => r.closed.errors)),
    timeouts: sum(runs.map((r) => r.closed.timeouts)),
    cpuPercent: Object.fromEntries([...cpuNames].map((n) => [n, spread(runs.map((r) => r.closed.cpuPercent[n])).median])),
    subject: rated[0]?.subject,
    cpuUsPerReq: spread(rated.map((r) => r.cpuUsPerReq)),
    bytesPerReq: spread(rated.map((r) => r.bytesPerReq)),
    ratedP99Ms: spread(rated.map((r) => r.latencyMs.p99)),
    ratedAchievedRps: spread(rated.map((r) => r.achievedRps)),
    ratedNon2xx: sum(rated.map((r) => r.non2xx)),
    ratedErrors: sum(rated.map((r) => r.errors + r.lost)),
    gcCostUsPerReq: spread(rated.map((r) => r.gcCostUsPerReq)),
    closedCpuUsPerReq: spread(runs.map((r) => r.closed.cpuUsPerReq)),
    eventLoopP99Ms: spread(rated.map((r) => r.eventLoopP99Ms)),
    eventLoopMaxMs: spread(rated.map((r) => r.eventLoopMaxMs)),
  };
}

export const allFigures = (runs: Record<string, RoundRun[]>): Record<string, TargetFigures> =>
  Object.fromEntries(Object.entries(runs).map(([name, r]) => [name, figuresOf(r)]));

export interface SelfCheck {
  a: string;
  b: string;
  /** Allowed relative difference of the medians (±). */
  band: number;
  cpuUsPerReqDiff: number | undefined;
  bytesPerReqDiff: number | undefined;
  /** Informative only: closed-loop rps swings with the machine. */
  rpsDiff: number | undefined;
  noisy: boolean;
  verdict: string;
}

/**
 * Compares two identical targets: noisy when their median CPU µs/req or bytes/req differ by more
 * than `band` (relative to the first), or when a figure is missing.
 */
export function selfCheck(figures: Record<string, TargetFigures>, a: string, b: string, band: number): SelfCheck {
  const fa = figures[a]!;
  const fb = figures[b]!;
  const cpu = relDiff(fa.cpuUsPerReq.median, fb.cpuUsPerReq.median);
  const bytes = relDiff(fa.bytesPerReq.median, fb.bytesPerReq.median);
  const rps = relDiff(fa.rps.median, fb.rps.median);
  const over = (d: number | undefined): boolean => d === undefined || Math.abs(d) > band;
  const noisy = over(cpu) || over(bytes);
  const verdict = `${noisy ? 'NOISY' : 'ok'}: twins ${a} / ${b} differ by ${signedPct(cpu)} CPU µs/req, ${signedPct(bytes)} bytes/req (band ±${(band * 100).toFixed(0)}%); rps ${signedPct(rps)} (informative)`;
  return { a, b, band, cpuUsPerReqDiff: cpu, bytesPerReqDiff: bytes, rpsDiff: rps, noisy, verdict };
}

/** The standard table of a rounds scenario: one row per target. */
export function figuresTable(
  figures: Record<string, TargetFigures>,
  { label = 'target', extra }: { label?: string; extra?: { header: string; cell: (name: string, f: TargetFigures) => string } } = {},
): string {
  const header = [
    label,
    'CPU µs/req',
    'bytes/req',
    'rps (closed loop)',
    'p99 ms (closed)',
    `p99 ms @ rate`,
    'non-2xx / errors',
    'measured process',
  ];
  if (extra) header.push(extra.header);
  const rows = Object.entries(figures).map(([name, f]) => {
    const row = [
      name,
      spreadText(f.cpuUsPerReq, 1),
      spreadText(f.bytesPerReq, 0),
      spreadText(f.rps, 0),
      spreadText(f.p99Ms, 1),
      spreadText(f.ratedP99Ms, 1),
      `${fmt(f.non2xx + f.ratedNon2xx)} / ${fmt(f.errors + f.ratedErrors)}`,
      f.subject ?? '–',
    ];
    if (extra) row.push(extra.cell(name, f));
    return row;
  });
  return table(header, rows);
}

/** The settings part of a rounds scenario's heading. */
export const roundsText = (s: Settings): string =>
  `${s.repeat} interleaved rounds; per target and round: warm-up ${s.warmup}s, ${s.rateDuration ? `${s.rate} req/s × ${s.rateDuration}s (CPU, bytes), ` : ''}closed loop ${s.duration}s; ${s.connections} connections`;
