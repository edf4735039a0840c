// /proc sampling (Linux): CPU time, RSS and open sockets of the bench's child processes.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function readStatus(pid: number): { rssKb: number | undefined; hwmKb: number | undefined } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number | undefined => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

function countSockets(pid: number): number | undefined {
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

/** utime + stime of a process in µs (10 ms resolution), or undefined. */
export function cpuTimeUs(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e6;
  } catch {
    return undefined;
  }
}

/**
 * Time on CPU of a process in µs, precise (ns): the first field of /proc/<pid>/task/<tid>/schedstat,
 * summed over its threads (threads that already exited are not counted). Undefined off Linux or
 * when the process is gone. For processes without the probe (nginx), instead of 10 ms ticks.
 */
export function schedCpuUs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* thread exited meanwhile */
      }
    }
    return ns / 1000;
  } catch {
    return undefined;
  }
}

/** Child pids of a process (from /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

export type CpuPercent = Record<string, number>;

/**
 * CPU used by processes over an interval, in % of one core: `cpuMeter({ spillway: pid, ... })`,
 * then `.stop()`. The bench process itself (autocannon) is included as `bench`.
 */
export function cpuMeter(pids: Record<string, number>): { stop(): CpuPercent } {
  const t0 = Date.now();
  const bench0 = process.cpuUsage();
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuTimeUs(pid)]));
  return {
    stop() {
      const seconds = (Date.now() - t0) / 1000;
      const out: CpuPercent = {};
      for (const [name, pid] of Object.entries(pids)) {
        const end = cpuTimeUs(pid);
        const begin = start[name];
        if (end !== undefined && begin !== undefined) out[name] = Math.round(((end - begin) / 1e6 / seconds) * 1000) / 10;
      }
      const bench = process.cpuUsage(bench0);
      out.bench = Math.round(((bench.user + bench.system) / 1e6 / seconds) * 1000) / 10;
      return out;
    },
  };
}

export interface Phase {
  name: string;
  samples: number;
  rssMaxKb: number;
  rssMinKb: number | undefined;
  rssLastKb: number;
  socketsMax: number;
}

export interface MemorySamples {
  intervalMs: number;
  hwmKb: number | undefined;
  phases: Phase[];
  series: { s: number; phase: string; rssKb: number; sockets?: number }[];
}

/**
 * Samples a process's VmRSS (and, less often, its open sockets) every `intervalMs`, keeping
 * per-phase maxima and a once-a-second series. `mark(name)` starts a named phase.
 */
export function sampleProcess(
  pid: number,
  { intervalMs = 200, socketEvery = 5 } = {},
): { mark(name: string): void; stop(): MemorySamples } {
  const phases: Phase[] = [];
  const newPhase = (name: string): Phase => ({ name, samples: 0, rssMaxKb: 0, rssMinKb: Infinity, rssLastKb: 0, socketsMax: 0 });
  let phase = newPhase('start');
  phases.push(phase);
  let tick = 0;
  const t0 = Date.now();
  const series: MemorySamples['series'] = [];
  const sample = (): void => {
    const status = readStatus(pid);
    if (status?.rssKb !== undefined) {
      if (tick % socketEvery === 0) series.push({ s: Math.round((Date.now() - t0) / 100) / 10, phase: phase.name, rssKb: status.rssKb });
      phase.samples++;
      phase.rssMaxKb = Math.max(phase.rssMaxKb, status.rssKb);
      phase.rssMinKb = Math.min(phase.rssMinKb ?? Infinity, status.rssKb);
      phase.rssLastKb = status.rssKb;
    }
    if (tick++ % socketEvery === 0) {
      const sockets = countSockets(pid);
      if (sockets !== undefined) {
        phase.socketsMax = Math.max(phase.socketsMax, sockets);
        const last = series.at(-1);
        if (last) last.sockets = sockets;
      }
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    mark(name) {
      sample();
      phase = newPhase(name);
      phases.push(phase);
      sample();
    },
    stop() {
      sample();
      clearInterval(timer);
      return {
        intervalMs,
        hwmKb: readStatus(pid)?.hwmKb,
        phases: phases.map((p) => ({ ...p, rssMinKb: p.rssMinKb === Infinity ? undefined : p.rssMinKb })),
        series,
      };
    },
  };
}

/** Highest RSS over every phase, in MB. */
export const rssMaxMb = (memory: MemorySamples): number => Math.round((Math.max(...memory.phases.map((p) => p.rssMaxKb)) / 1024) * 10) / 10;

/** Share of CPU time the machine spent busy over `ms` (from /proc/stat), or undefined off Linux. */
export async function machineBusy(ms = 1_000): Promise<number | undefined> {
  const read = (): { idle: number; total: number } | undefined => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      return { idle: fields[3]! + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return undefined;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  if (!a || !b || b.total === a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : undefined;
  } catch {
    return undefined;
  }
}
