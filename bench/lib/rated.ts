// The rated run of a target's turn: a fixed open-loop rate well below saturation, over which the
// subject process's CPU time and heap allocation are read → CPU µs and bytes per request answered.
// Also: CPU snapshots of a subject (the probe over IPC, else /proc schedstat), used for the closed loop too.

import type { Options } from 'autocannon';
import { cpuMeter, cpuTimeUs, schedCpuUs, type CpuPercent } from './proc.ts';
import { loadSliced, wholeRun, type Latency } from './load.ts';
import { probeSnapshot, type ProbeSnapshot, type Target } from './processes.ts';
import { sum } from './stats.ts';

/** How a rated run is driven (a subset of the rounds' settings). */
export interface RateSettings {
  connections: number;
  rate: number;
  rateDuration: number;
  slices: number;
}

/** What is measured: the load's autocannon options, the subject process, the processes metered in CPU %. */
export interface RatedTarget {
  options: Omit<Options, 'duration' | 'connections'>;
  subject?: { label: string; target: Target };
  pids: Record<string, number>;
}

export type CpuSource = 'probe' | 'schedstat' | 'proc';

export interface RatedRun {
  subject: string | undefined;
  rate: number;
  seconds: number;
  sent: number;
  responses: number;
  non2xx: number;
  lost: number;
  errors: number;
  achievedRps: number;
  /** Measured per response (hrtime, sub-ms), not autocannon's whole-ms histogram. */
  latencyMs: Latency;
  /** Subject CPU (user + system) ÷ responses, µs. */
  cpuUsPerReq: number | undefined;
  /** Where the CPU time came from: the probe (µs), /proc schedstat (ns) or /proc stat (10 ms ticks). */
  cpuSource: CpuSource | undefined;
  /** V8 heap bytes allocated by the subject ÷ responses. */
  bytesPerReq: number | undefined;
  gcs: number | undefined;
  gcCostUsPerReq: number | undefined;
  /** The subject's event-loop delay over the run (probe only), ms. */
  eventLoopP99Ms?: number | undefined;
  eventLoopMaxMs?: number | undefined;
  cpuPercent: CpuPercent;
}

export interface CpuSnapshot {
  probe?: ProbeSnapshot;
  /** CPU time from /proc, µs. */
  procUs?: number;
  source: CpuSource;
}

/** CPU (and, with the probe, heap and event-loop) snapshot of a subject. */
export async function cpuSnapshot(target: Target): Promise<CpuSnapshot> {
  if (target.probed) return { probe: await probeSnapshot(target.child), source: 'probe' };
  const sched = schedCpuUs(target.pid);
  if (sched !== undefined) return { procUs: sched, source: 'schedstat' };
  return { procUs: cpuTimeUs(target.pid), source: 'proc' };
}

/** CPU µs the subject used between two snapshots. */
export function cpuBetween(before: CpuSnapshot | undefined, after: CpuSnapshot | undefined): number | undefined {
  if (before?.probe && after?.probe) return after.probe.cpuUs - before.probe.cpuUs;
  if (before?.procUs !== undefined && after?.procUs !== undefined) return after.procUs - before.procUs;
  return undefined;
}

export async function ratedRun(t: RatedTarget, s: RateSettings): Promise<RatedRun> {
  const subject = t.subject?.target;
  const before = subject ? await cpuSnapshot(subject) : undefined;
  const meter = cpuMeter(t.pids);
  const slices = Math.max(1, Math.min(s.slices, s.connections));
  const run = await loadSliced({
    ...t.options,
    connections: s.connections,
    overallRate: s.rate,
    slices,
    seconds: s.rateDuration,
    // report latencies as measured, not autocannon's coordinated-omission estimate
    ignoreCoordinatedOmission: true,
  });
  const cpuPercent = meter.stop();
  const after = subject ? await cpuSnapshot(subject) : undefined;
  const totals = wholeRun(run);
  const responses = totals.responses;
  const errors = sum(run.slices.map((x) => x.errors));
  const cpuUs = cpuBetween(before, after);
  let bytes: number | undefined;
  let gcs: number | undefined;
  let gcCostUs: number | undefined;
  if (before?.probe && after?.probe) {
    bytes = after.probe.gcFreed - before.probe.gcFreed + (after.probe.heapUsed - before.probe.heapUsed);
    gcs = after.probe.gcs - before.probe.gcs;
    gcCostUs = after.probe.gcCostUs - before.probe.gcCostUs;
  }
  const per = (x: number | undefined): number | undefined => (x === undefined || !responses ? undefined : x / responses);
  return {
    subject: t.subject?.label,
    rate: s.rate,
    seconds: s.rateDuration,
    sent: totals.sent,
    responses,
    non2xx: totals.non2xx,
    lost: totals.lost,
    errors,
    achievedRps: responses / ((run.finishedAt - run.startedAt) / 1000),
    latencyMs: totals.latencyMs,
    cpuUsPerReq: per(cpuUs),
    cpuSource: before?.source,
    bytesPerReq: per(bytes),
    gcs,
    gcCostUsPerReq: per(gcCostUs),
    ...(after?.probe ? { eventLoopP99Ms: after.probe.eventLoopP99Ms, eventLoopMaxMs: after.probe.eventLoopMaxMs } : {}),
    cpuPercent,
  };
}
