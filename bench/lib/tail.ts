// Tail latency at a fixed open-loop rate: interleaved rounds of rated runs only (no warm-up, no closed
// loop), latencies measured per response with sub-ms resolution (load.ts books autocannon's hrtime
// `responseTime`, not its whole-ms histogram). Latency added by a proxy = its p50/p99 − the direct
// target's in the same round; with the probe, the subject's event-loop delay over the run.

import { ratedRun, type RatedRun, type RateSettings, type RatedTarget } from './rated.ts';
import { sleep } from './load.ts';
import { spread, sum, type Spread } from './stats.ts';
import { fmt, spreadText, table } from './format.ts';
import type { Log } from './rounds.ts';

export interface TailTarget extends RatedTarget {
  name: string;
}

/** `repeat` rounds, each running every target at `rate` for `rateDuration` s, `pauseMs` apart. */
export async function tailRounds({
  targets,
  settings: s,
  repeat,
  log,
  pauseMs = 1_000,
}: {
  targets: TailTarget[];
  settings: RateSettings;
  repeat: number;
  log: Log;
  pauseMs?: number;
}): Promise<Record<string, RatedRun[]>> {
  const runs: Record<string, RatedRun[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (let round = 1; round <= repeat; round++) {
    for (const t of targets) {
      await sleep(pauseMs);
      const run = await ratedRun(t, s);
      runs[t.name]!.push(run);
      const loop =
        run.eventLoopP99Ms === undefined
          ? ''
          : `, event-loop delay p99 ${fmt(run.eventLoopP99Ms, 2)} ms max ${fmt(run.eventLoopMaxMs, 1)} ms`;
      log(
        `[tail ${round}/${repeat}] ${t.name}: ${s.rate} req/s × ${s.rateDuration}s → ${fmt(run.responses)} answered, p50 ${fmt(run.latencyMs.p50, 2)} ms, p99 ${fmt(run.latencyMs.p99, 2)} ms${loop}`,
      );
    }
  }
  return runs;
}

export interface TailFigures {
  p50Ms: Spread;
  p99Ms: Spread;
  maxMs: Spread;
  /** Per round: this target's p50 / p99 − the reference's in the same round. */
  addedP50Ms: Spread;
  addedP99Ms: Spread;
  achievedRps: Spread;
  cpuUsPerReq: Spread;
  eventLoopP99Ms: Spread;
  eventLoopMaxMs: Spread;
  non2xx: number;
  errors: number;
}

export function tailFigures(runs: Record<string, RatedRun[]>, reference: string): Record<string, TailFigures> {
  const ref = runs[reference] ?? [];
  const added = (r: RatedRun[], key: 'p50' | 'p99'): Spread =>
    spread(
      r.map((run, i) => {
        const a = run.latencyMs[key];
        const b = ref[i]?.latencyMs[key];
        return a === undefined || b === undefined ? undefined : a - b;
      }),
    );
  return Object.fromEntries(
    Object.entries(runs).map(([name, r]) => [
      name,
      {
        p50Ms: spread(r.map((x) => x.latencyMs.p50)),
        p99Ms: spread(r.map((x) => x.latencyMs.p99)),
        maxMs: spread(r.map((x) => x.latencyMs.max)),
        addedP50Ms: added(r, 'p50'),
        addedP99Ms: added(r, 'p99'),
        achievedRps: spread(r.map((x) => x.achievedRps)),
        cpuUsPerReq: spread(r.map((x) => x.cpuUsPerReq)),
        eventLoopP99Ms: spread(r.map((x) => x.eventLoopP99Ms)),
        eventLoopMaxMs: spread(r.map((x) => x.eventLoopMaxMs)),
        non2xx: sum(r.map((x) => x.non2xx)),
        errors: sum(r.map((x) => x.errors + x.lost)),
      },
    ]),
  );
}

export function tailTable(figures: Record<string, TailFigures>, reference: string): string {
  return table(
    [
      'target',
      'p50 ms',
      'p99 ms',
      `added p50 ms (− ${reference})`,
      `added p99 ms (− ${reference})`,
      'max ms',
      'CPU µs/req',
      'event-loop delay p99 / max ms',
      'achieved req/s',
      'non-2xx / errors',
    ],
    Object.entries(figures).map(([name, f]) => [
      name,
      spreadText(f.p50Ms, 2),
      spreadText(f.p99Ms, 2),
      name === reference ? '–' : spreadText(f.addedP50Ms, 2),
      name === reference ? '–' : spreadText(f.addedP99Ms, 2),
      spreadText(f.maxMs, 1),
      spreadText(f.cpuUsPerReq, 1),
      f.eventLoopP99Ms.median === undefined ? '–' : `${spreadText(f.eventLoopP99Ms, 2)} / ${spreadText(f.eventLoopMaxMs, 1)}`,
      spreadText(f.achievedRps, 0),
      `${fmt(f.non2xx)} / ${fmt(f.errors)}`,
    ]),
  );
}
