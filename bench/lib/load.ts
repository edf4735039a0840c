// Load generation with autocannon (in the bench process): closed-loop runs, and rated (open-loop)
// runs split over staggered instances, with every request booked in the wall-clock second it was sent.

import autocannon, { type Client, type Options, type Result } from 'autocannon';
import { percentile, sum } from './stats.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export interface LoadResult extends Result {
  errorCodes: Record<string, number>;
  sent: number;
  reconnects?: number;
  startedAt: number;
  finishedAt: number;
}

export interface Latency {
  mean: number | undefined;
  p50: number | undefined;
  p90: number | undefined;
  p99: number | undefined;
  max: number | undefined;
}

export interface Summary {
  durationS: number;
  rpsMean: number;
  rpsStddev: number;
  startedAt: number;
  finishedAt: number;
  requestsSent: number;
  responses: number;
  rpsCompleted: number;
  latencyMs: Latency;
  status2xx: number;
  non2xx: number;
  statusCounts: Record<string, number>;
  errors: number;
  timeouts: number;
  errorCodes: Record<string, number>;
  reconnects: number | undefined;
  throughputBytesPerS: number;
}

const countError = (codes: Record<string, number>, err: unknown): void => {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? e?.message ?? String(err);
  codes[code] = (codes[code] ?? 0) + 1;
};

/** One autocannon run; adds `errorCodes` (from 'reqError') and `sent` (requests written). */
export function load(opts: Options): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const errorCodes: Record<string, number> = {};
    let sent = 0;
    const startedAt = Date.now();
    const instance = autocannon(
      {
        timeout: 10,
        ...opts,
        setupClient: (client: Client) => {
          client.on('request', () => sent++);
        },
      },
      (err, result) => {
        if (err) reject(err);
        else resolve({ ...result, errorCodes, sent, startedAt, finishedAt: Date.now() });
      },
    );
    instance.on('reqError', (err: unknown) => countError(errorCodes, err));
  });
}

export interface WindowBucket {
  sent: number;
  statuses: Record<string, number>;
  lost: number;
  latencies: number[];
}

export interface SlicedRun {
  startedAt: number;
  finishedAt: number;
  slices: Summary[];
  windows: Map<number, WindowBucket>;
}

type TrackedClient = Client & { sendWindows?: number[]; _connect?: (...args: unknown[]) => unknown };

/**
 * Rated load in `slices` autocannon instances started 1/slices s apart, each with its share of the
 * connections and of `overallRate`, all running `seconds`.
 *
 * autocannon's `overallRate` gives every connection a quota per second of its own clock, sent back
 * to back at the start of that second: one instance delivers its whole rate as one burst per second.
 * N staggered instances send N smaller bursts per second, much closer to a steady open-loop rate.
 * Every request is booked in the wall-clock second it was sent (sent, statuses, lost, latencies).
 */
export async function loadSliced({
  slices = 1,
  connections,
  overallRate,
  seconds,
  ...opts
}: Omit<Options, 'connections' | 'overallRate' | 'duration'> & {
  slices?: number;
  connections: number;
  overallRate: number;
  seconds: number;
}): Promise<SlicedRun> {
  const windows = new Map<number, WindowBucket>();
  const bucket = (w: number): WindowBucket => {
    let b = windows.get(w);
    if (!b) windows.set(w, (b = { sent: 0, statuses: {}, lost: 0, latencies: [] }));
    return b;
  };
  const startedAt = Date.now();
  const runs: Promise<LoadResult>[] = [];
  for (let i = 0; i < slices; i++) {
    const share = (total: number): number => Math.floor(total / slices) + (i < total % slices ? 1 : 0);
    const startAt = startedAt + Math.round((i * 1000) / slices);
    runs.push(
      sleep(startAt - Date.now()).then(
        () =>
          new Promise<LoadResult>((resolve, reject) => {
            const errorCodes: Record<string, number> = {};
            let sent = 0;
            let reconnects = 0;
            const instance = autocannon(
              {
                timeout: 10,
                ...opts,
                connections: Math.max(1, share(connections)),
                overallRate: Math.max(1, share(overallRate)),
                duration: seconds,
                // Each connection remembers the send windows of its outstanding requests (FIFO); when
                // autocannon reconnects, the outstanding requests are booked as lost.
                setupClient: (c: Client) => {
                  const client = c as TrackedClient;
                  client.sendWindows = [];
                  client.on('request', () => {
                    sent++;
                    const w = Math.floor(Date.now() / 1000);
                    client.sendWindows!.push(w);
                    bucket(w).sent++;
                  });
                  let connects = 0;
                  const connect = client._connect!;
                  client._connect = function (this: unknown, ...args: unknown[]) {
                    if (connects++ > 0) {
                      reconnects++;
                      for (const w of client.sendWindows!.splice(0)) bucket(w).lost++;
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
            instance.on('response', (c: TrackedClient | undefined, status: number, _bytes: number, responseTime: number) => {
              const b = bucket(c?.sendWindows?.shift() ?? Math.floor((Date.now() - responseTime) / 1000));
              b.statuses[status] = (b.statuses[status] ?? 0) + 1;
              b.latencies.push(responseTime);
            });
            instance.on('reqError', (err: unknown) => countError(errorCodes, err));
          }),
      ),
    );
  }
  const results = await Promise.all(runs);
  return { startedAt, finishedAt: Date.now(), slices: results.map(summarise), windows };
}

export interface WindowTotals {
  windows: number;
  sent: number;
  responses: number;
  lost: number;
  noOutcome: number;
  status2xx: number;
  non2xx: number;
  statuses: Record<string, number>;
  latencyMs: Latency;
  perWindow: { window: number; sent: number; statuses: Record<string, number>; lost: number }[];
  errorCodes?: Record<string, number>;
  rpsCompleted?: number;
}

/** Totals of a loadSliced() run over the windows [from, from + count). */
export function windowTotals(windows: Map<number, WindowBucket>, from: number, count: number): WindowTotals {
  const statuses: Record<string, number> = {};
  let sent = 0;
  let lost = 0;
  const latencies: number[] = [];
  const perWindow: WindowTotals['perWindow'] = [];
  for (let w = from; w < from + count; w++) {
    const b = windows.get(w) ?? { sent: 0, statuses: {}, lost: 0, latencies: [] };
    sent += b.sent;
    lost += b.lost;
    for (const [status, n] of Object.entries(b.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
    for (const l of b.latencies) latencies.push(l);
    perWindow.push({ window: w, sent: b.sent, statuses: b.statuses, lost: b.lost });
  }
  latencies.sort((a, b) => a - b);
  const responses = sum(Object.values(statuses));
  const status2xx = sum(Object.entries(statuses).map(([s, n]) => (Number(s) >= 200 && Number(s) < 300 ? n : 0)));
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
      mean: latencies.length ? sum(latencies) / latencies.length : undefined,
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: latencies.at(-1),
    },
    perWindow,
  };
}

/** All windows of a loadSliced() run. */
export const wholeRun = (run: SlicedRun): WindowTotals =>
  windowTotals(run.windows, Math.floor(run.startedAt / 1000), Math.ceil(run.finishedAt / 1000) - Math.floor(run.startedAt / 1000) + 1);

/** The figures kept from an autocannon result. */
export function summarise(result: LoadResult): Summary {
  const statusCounts: Record<string, number> = {};
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

/** First whole wall-clock second after the last of `slices` staggered slices started at `startMs` and `warmup` s passed. */
export const firstMeasuredWindow = (startMs: number, slices: number, warmup: number): number =>
  Math.ceil((startMs + ((slices - 1) * 1000) / slices + warmup * 1000) / 1000);

/** Client error codes summed over the slices of a loadSliced() run, and autocannon's reconnects. */
export function sliceErrors(run: SlicedRun): { errorCodes: Record<string, number>; reconnects: number } {
  const errorCodes: Record<string, number> = {};
  for (const s of run.slices) for (const [code, n] of Object.entries(s.errorCodes)) errorCodes[code] = (errorCodes[code] ?? 0) + n;
  return { errorCodes, reconnects: sum(run.slices.map((x) => x.reconnects ?? 0)) };
}

/** Notes about the client side of a loadSliced() run. */
export function clientNotes(errorCodes: Record<string, number>, reconnects: number): string[] {
  const notes: string[] = [];
  if (Object.keys(errorCodes).length) notes.push(`client error codes (whole run): ${JSON.stringify(errorCodes)}`);
  if (reconnects) notes.push(`autocannon had to reopen ${reconnects} connection(s) (error, timeout or closed by spillway)`);
  return notes;
}
