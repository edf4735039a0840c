// Scenario "ratelimit": what does a client rate limit cost on the hot path?
// One origin, one private redis-server, one spillway with four routes to the origin: /none (no
// limit), /none-twin (the same: the self-check), /memory (per-key buckets in the gateway) and
// /redis (the same policy in Redis: one EVALSHA per event-loop turn's checks). Buckets never run out.

import { configHead, forkTarget, startGateway, withTargets } from '../lib/processes.ts';
import { startRedis } from '../lib/redis.ts';
import {
  allFigures,
  figuresTable,
  measureRounds,
  roundsText,
  selfCheck,
  type Log,
  type MeasuredTarget,
  type Settings,
} from '../lib/rounds.ts';
import { gatewayLog, gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { fmt, pct, signedMs, spreadText, table } from '../lib/format.ts';
import { relDiff, type Spread } from '../lib/stats.ts';

export const title = 'spillway bench — ratelimit';
export const intro = `
One minimal node:http origin, one private redis-server, one spillway with routes to the origin:
**none** (no rate limit), **none twin** (an identical second route: the self-check), **memory** (a
per-API-key token bucket in the gateway) and **redis** (the same policy, buckets in Redis: one atomic
Lua script per event-loop turn's checks). Buckets never run out: the figures are the limiter's cost.
Requests rotate over 100 API keys. Interleaved rounds; per target and round: warm-up, fixed open-loop
rate (spillway CPU µs and heap bytes per request), closed loop (rps, p99). Last table: redis against
memory (rps target ≥ 0.9×), and the p99 each limiter adds over none.
`;

const TARGETS = ['none', 'none twin', 'memory', 'redis'] as const;
const PATHS: Record<string, string> = { none: '/none', 'none twin': '/none-twin', memory: '/memory', redis: '/redis' };

export function gatewayYaml(originUrl: string, redisUrl: string): string {
  return `${configHead('bench/scenarios/ratelimit.ts')}redis: { url: ${redisUrl}, keyPrefix: "bench:", onRedisError: open }
rateLimits:
  per-key-memory: { key: header:x-api-key, capacity: 1000000000, refill: 1000000000/s, store: memory }
  per-key-redis: { key: header:x-api-key, capacity: 1000000000, refill: 1000000000/s }
upstreams:
  origin: { backends: [{ url: ${originUrl} }] }
routes:
  - { match: { path: /none-twin }, upstream: origin }
  - { match: { path: /none }, upstream: origin }
  - { match: { path: /memory }, upstream: origin, rateLimit: per-key-memory }
  - { match: { path: /redis }, upstream: origin, rateLimit: per-key-redis }
`;
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const redis = track(await startRedis());
    const gateway = track(await startGateway(gatewayYaml(origin.ready.url, redis.url)));
    log(
      `origin ${origin.ready.url} (pid ${origin.pid}), redis ${redis.url} (pid ${redis.pid}), spillway ${gateway.url} (pid ${gateway.pid})`,
    );
    const requests = Array.from({ length: 100 }, (_, i) => ({ method: 'GET', headers: { 'x-api-key': `bench-key-${i}` } }));
    const targets: MeasuredTarget[] = TARGETS.map((t) => ({
      name: t,
      options: { requests, url: `${gateway.url}${PATHS[t]}` },
      subject: { label: 'spillway', target: gateway },
      pids: { spillway: gateway.pid, origin: origin.pid, redis: redis.pid },
    }));
    const runs = await measureRounds({ targets, settings, log, closedCpu: true });
    const stops = await stopInOrder([
      ['spillway', gateway],
      ['redis', redis],
      ['origin', origin],
    ]);

    const figures = allFigures(runs);
    const checks = [selfCheck(figures, 'none', 'none twin', settings.band)];
    const vsNone = (t: string): Record<string, number | undefined> => ({
      cpuUsPerReq: relDiff(figures.none!.cpuUsPerReq.median, figures[t]!.cpuUsPerReq.median),
      bytesPerReq: relDiff(figures.none!.bytesPerReq.median, figures[t]!.bytesPerReq.median),
      rps: relDiff(figures.none!.rps.median, figures[t]!.rps.median),
    });
    const ratios = { memory: vsNone('memory'), redis: vsNone('redis') };
    const redisVsMemory = redisAgainstMemory(figures);
    const md = [
      figuresTable(figures, {
        label: 'limiter',
        extra: {
          header: 'CPU % spillway / redis; CPU µs/req closed loop',
          cell: (_n, f) => `${f.cpuPercent.spillway ?? '–'}% / ${f.cpuPercent.redis ?? '–'}%; ${spreadText(f.closedCpuUsPerReq, 1)}`,
        },
      }),
      '',
      table(
        ['vs none (medians)', 'CPU µs/req', 'bytes/req', 'rps'],
        Object.entries(ratios).map(([t, r]) => [t, pct(r.cpuUsPerReq), pct(r.bytesPerReq), pct(r.rps)]),
      ),
      '',
      redisVsMemoryTable(redisVsMemory),
    ].join('\n');
    return scenarioResult({
      scenario: 'ratelimit',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings, method: 'GET', paths: PATHS, order: [...TARGETS], apiKeys: 100 },
      record: {
        figures,
        ratiosVsNone: ratios,
        redisVsMemory,
        runs,
        spillway: { log: gatewayLog(gateway), config: gateway.configText },
        exits: stops,
      },
      md,
      notes: gatewayNotes(gateway, stops.spillway),
      summary: { settings: { ...settings }, figures, selfCheck: checks, ratios: { ...ratios, redisVsMemory } },
    });
  });
}

type Figures = ReturnType<typeof allFigures>;

/** Ratios of medians, and the same ratio round by round (the rounds are interleaved: each pair ran minutes apart at most). */
interface Ratio {
  median: number | undefined;
  perRound: number[];
}

const ratioOf = (a: Spread, b: Spread): Ratio => ({
  median: a.median !== undefined && b.median ? a.median / b.median : undefined,
  perRound: a.values.map((v, i) => v / b.values[i]!).filter((v) => Number.isFinite(v)),
});

const diffOf = (a: Spread, b: Spread): number | undefined =>
  a.median !== undefined && b.median !== undefined ? a.median - b.median : undefined;

export interface RedisVsMemory {
  rps: Ratio;
  cpuUsPerReq: Ratio;
  cpuUsPerReqAdded: number | undefined;
  /** The same at saturation (closed loop), where one script call carries many checks. */
  closedCpuUsPerReq: Ratio;
  bytesPerReq: Ratio;
  addedP99Ms: { closed: { memory?: number; redis?: number }; rated: { memory?: number; redis?: number } };
}

/** The issue's figures: redis / memory rps (target ≥ 0.9×) and CPU µs per request, and the p99 each adds over none. */
function redisAgainstMemory(figures: Figures): RedisVsMemory {
  const none = figures.none!;
  const memory = figures.memory!;
  const redis = figures.redis!;
  return {
    rps: ratioOf(redis.rps, memory.rps),
    cpuUsPerReq: ratioOf(redis.cpuUsPerReq, memory.cpuUsPerReq),
    cpuUsPerReqAdded: diffOf(redis.cpuUsPerReq, memory.cpuUsPerReq),
    closedCpuUsPerReq: ratioOf(redis.closedCpuUsPerReq, memory.closedCpuUsPerReq),
    bytesPerReq: ratioOf(redis.bytesPerReq, memory.bytesPerReq),
    addedP99Ms: {
      closed: { memory: diffOf(memory.p99Ms, none.p99Ms), redis: diffOf(redis.p99Ms, none.p99Ms) },
      rated: { memory: diffOf(memory.ratedP99Ms, none.ratedP99Ms), redis: diffOf(redis.ratedP99Ms, none.ratedP99Ms) },
    },
  };
}

function redisVsMemoryTable(r: RedisVsMemory): string {
  const times = (x: number | undefined): string => (x === undefined ? '–' : `${x.toFixed(2)}×`);
  const ratio = (x: Ratio): string => `${times(x.median)} (per round: ${x.perRound.map(times).join(', ') || '–'})`;
  const ms = (x: number | undefined): string => (x === undefined ? '–' : signedMs(x));
  return table(
    ['redis vs memory (medians)', 'value'],
    [
      ['redis / memory rps, closed loop (target ≥ 0.9×)', ratio(r.rps)],
      [
        'redis / memory CPU µs per request @ rate',
        `${ratio(r.cpuUsPerReq)}; redis − memory ${r.cpuUsPerReqAdded === undefined ? '–' : `${fmt(r.cpuUsPerReqAdded, 1)} µs`}`,
      ],
      ['redis / memory CPU µs per request, closed loop (saturation)', ratio(r.closedCpuUsPerReq)],
      ['redis / memory bytes per request @ rate', ratio(r.bytesPerReq)],
      ['added p99 vs none, closed loop: memory / redis', `${ms(r.addedP99Ms.closed.memory)} / ${ms(r.addedP99Ms.closed.redis)}`],
      ['added p99 vs none, @ rate: memory / redis', `${ms(r.addedP99Ms.rated.memory)} / ${ms(r.addedP99Ms.rated.redis)}`],
    ],
  );
}
