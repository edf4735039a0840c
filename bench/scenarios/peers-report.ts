// The peers scenario's figures: CPU µs/req table, the ratios the issue asks for (with their targets),
// and the tail-latency verdicts.

import type { RoundRun, TargetFigures } from '../lib/rounds.ts';
import type { TailFigures } from '../lib/tail.ts';
import { fmt, spreadText, table } from '../lib/format.ts';

export interface Ratio {
  name: string;
  figure: 'CPU µs/req' | 'rps';
  /** The target: ≤ for CPU ratios, ≥ for rps ratios. */
  target: number;
  rated: { median: number | undefined; least: number | undefined };
  closed: { median: number | undefined; least: number | undefined };
}

const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

/** The comparisons of issue 21, on medians and on the least of the rounds (best rounds for rps). */
export function peerRatios(f: Record<string, TargetFigures>): Ratio[] {
  const cpu = (name: string, a: string, b: string, target: number): Ratio => ({
    name,
    figure: 'CPU µs/req',
    target,
    rated: { median: div(f[a]?.cpuUsPerReq.median, f[b]?.cpuUsPerReq.median), least: div(f[a]?.cpuUsPerReq.min, f[b]?.cpuUsPerReq.min) },
    closed: {
      median: div(f[a]?.closedCpuUsPerReq.median, f[b]?.closedCpuUsPerReq.median),
      least: div(f[a]?.closedCpuUsPerReq.min, f[b]?.closedCpuUsPerReq.min),
    },
  });
  const nodePeers = ['bare undici proxy', 'fastify-proxy'];
  const best = (key: 'median' | 'max'): number | undefined => Math.max(...nodePeers.map((n) => f[n]?.rps[key] ?? 0)) || undefined;
  const rps = (name: string, a: string, b: string | undefined, target: number): Ratio => ({
    name,
    figure: 'rps',
    target,
    rated: { median: undefined, least: undefined },
    closed: {
      median: div(f[a]?.rps.median, b ? f[b]?.rps.median : best('median')),
      least: div(f[a]?.rps.max, b ? f[b]?.rps.max : best('max')),
    },
  });
  return [
    cpu('spillway ÷ bare undici proxy', 'spillway', 'bare undici proxy', 0.7),
    cpu('spillway ÷ nginx worker', 'spillway', 'nginx', 2),
    cpu('spillway ÷ fastify-proxy', 'spillway', 'fastify-proxy', 1),
    cpu('metrics on ÷ metrics off', 'spillway', 'spillway metrics off', 1.05),
    cpu('traces 10% ÷ metrics on', 'spillway traces 10%', 'spillway', 1.05),
    rps('spillway ÷ nginx', 'spillway', 'nginx', 0.5),
    rps('spillway ÷ best Node peer (bare proxy, fastify-proxy)', 'spillway', undefined, 1.3),
  ];
}

const verdict = (r: Ratio, v: number | undefined): string => {
  if (v === undefined) return '–';
  const met = r.figure === 'rps' ? v >= r.target : v <= r.target;
  return `${fmt(v, 2)}× ${met ? '✓' : '✗'}`;
};

export function ratiosTable(ratios: Ratio[]): string {
  return table(
    ['ratio', 'target', '@ rate: medians', '@ rate: least', 'closed loop: medians', 'closed loop: least (rps: best)'],
    ratios.map((r) => [
      `${r.name} (${r.figure})`,
      `${r.figure === 'rps' ? '≥' : '≤'} ${fmt(r.target, 2)}×`,
      verdict(r, r.rated.median),
      verdict(r, r.rated.least),
      verdict(r, r.closed.median),
      verdict(r, r.closed.least),
    ]),
  );
}

export function cpuTable(f: Record<string, TargetFigures>, runs: Record<string, RoundRun[]>): string {
  return table(
    ['target', 'measured process', 'CPU source', '@ rate', '@ rate least', 'closed loop (saturation)', 'closed loop least', 'rps (closed)'],
    Object.entries(f).map(([name, x]) => [
      name,
      x.subject ?? '–',
      runs[name]?.[0]?.rated?.cpuSource ?? '–',
      spreadText(x.cpuUsPerReq, 1),
      fmt(x.cpuUsPerReq.min, 1),
      spreadText(x.closedCpuUsPerReq, 1),
      fmt(x.closedCpuUsPerReq.min, 1),
      spreadText(x.rps, 0),
    ]),
  );
}

export interface TailVerdict {
  name: string;
  value: string;
  target: string;
  met: boolean | undefined;
}

export function tailVerdicts(tail: Record<string, TailFigures>): TailVerdict[] {
  const sp = tail.spillway;
  const bare = tail['bare undici proxy'];
  const spAdded = sp?.addedP99Ms.median;
  const bareAdded = bare?.addedP99Ms.median;
  const loopP99 = sp?.eventLoopP99Ms;
  return [
    {
      name: 'spillway added p99 vs bare undici proxy added p99 (medians)',
      value: `${fmt(spAdded, 2)} ms vs ${fmt(bareAdded, 2)} ms`,
      target: 'spillway ≤ bare proxy',
      met: spAdded === undefined || bareAdded === undefined ? undefined : spAdded <= bareAdded,
    },
    {
      name: 'spillway event-loop delay p99',
      value: `${spreadText(loopP99, 2)} ms`,
      target: '≤ 5 ms',
      met: loopP99?.median === undefined ? undefined : loopP99.median <= 5,
    },
    { name: 'spillway event-loop delay max', value: `${spreadText(sp?.eventLoopMaxMs, 1)} ms`, target: 'reported only', met: undefined },
  ];
}
