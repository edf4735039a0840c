// Scenario "ratelimit": what does a client rate limit cost on the hot path?
//
// One origin (origin.mjs), one private redis-server (free port, no persistence), one spillway with
// three routes to the origin: `/none` (no limit), `/memory` (a per-key policy, in-memory buckets)
// and `/redis` (the same policy, buckets in Redis: one EVALSHA per request). The policy's bucket is
// large enough that every request is allowed: the figure is the limiter's overhead, not 429s.
// Requests carry one of 100 API keys, so the limiter works on many buckets. Same autocannon settings
// for all three; with --repeat N the targets are interleaved and the figures averaged.

import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { HOST, fmt, pct, sampleProcess, sleep, startGateway, table } from './lib.mjs';
import { averageFigures, basicCells, configHead, cpuMean, gatewayNotes, measureRounds, roundsText, rssMaxMb, scenarioResult, signedMs, withOrigin } from './compare.mjs';

export const title = 'spillway bench — ratelimit';
export const intro = `
One minimal node:http origin, one private redis-server, one spillway with three routes to the origin:
**none** (no rate limit), **memory** (a per-API-key token bucket in the gateway process) and **redis**
(the same policy with its buckets in Redis: one atomic Lua script per request, Redis' clock). Buckets
are big enough that every request passes: the figures are the limiter's cost. Requests rotate over
100 API keys. Identical autocannon settings (GET, closed loop); each measured run follows a warm-up.
Every process (origin, redis-server, spillway, autocannon) shares the same machine.
`;

const TARGETS = ['none', 'memory', 'redis'];

export function gatewayYaml(originUrl, redisUrl) {
  return `${configHead('bench/ratelimit.mjs')}redis: { url: ${redisUrl}, keyPrefix: "bench:", onRedisError: open }
rateLimits:
  per-key-memory: { key: header:x-api-key, capacity: 1000000000, refill: 1000000000/s, store: memory }
  per-key-redis: { key: header:x-api-key, capacity: 1000000000, refill: 1000000000/s }
upstreams:
  origin: { backends: [{ url: ${originUrl} }] }
routes:
  - { match: { path: /none }, upstream: origin }
  - { match: { path: /memory }, upstream: origin, rateLimit: per-key-memory }
  - { match: { path: /redis }, upstream: origin, rateLimit: per-key-redis }
`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function pong(port) {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
  });
}

/** A private redis-server, killed (by its pid) when the bench ends. */
async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const kill = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  child.once('error', () => undefined);
  for (let i = 0; i < 100 && !(await pong(port)); i++) await sleep(50);
  if (!(await pong(port))) {
    kill();
    throw new Error('redis-server did not start (is it installed?)');
  }
  return { url: `redis://${HOST}:${port}`, pid: child.pid, stop: async () => kill() };
}

export async function run(settings, log) {
  const { duration, warmup, connections, repeat } = settings;
  const started = new Date();
  return withOrigin(async ({ origin, track, stopInOrder }) => {
    const redis = track(await startRedis());
    const gateway = track(await startGateway(gatewayYaml(origin.ready.url, redis.url)));
    log(`origin ${origin.ready.url} (pid ${origin.pid}), redis ${redis.url} (pid ${redis.pid}), spillway ${gateway.url} (pid ${gateway.pid})`);

    const rss = sampleProcess(gateway.pid);
    const requests = Array.from({ length: 100 }, (_, i) => ({ method: 'GET', headers: { 'x-api-key': `bench-key-${i}` } }));
    const runs = await measureRounds({
      ...settings,
      targets: TARGETS,
      log,
      options: (target) => ({ connections, pipelining: 1, requests, url: `${gateway.url}/${target}` }),
      pids: () => ({ origin: origin.pid, spillway: gateway.pid, redis: redis.pid }),
    });
    const memory = rss.stop();
    const stops = await stopInOrder([['spillway', gateway], ['redis', redis], ['origin', origin]]);

    const figures = averageFigures(TARGETS, runs, {
      more: (r) => ({ cpuSpillwayPercent: cpuMean(r, 'spillway'), cpuRedisPercent: cpuMean(r, 'redis'), cpuBenchPercent: cpuMean(r, 'bench') }),
    });
    const f = figures;
    const ratios = {
      memoryOverNoneRps: f.memory.rpsMean / f.none.rpsMean,
      redisOverNoneRps: f.redis.rpsMean / f.none.rpsMean,
      redisMinusNoneP99Ms: f.redis.latencyP99Ms - f.none.latencyP99Ms,
      memoryMinusNoneP99Ms: f.memory.latencyP99Ms - f.none.latencyP99Ms,
    };
    const rows = TARGETS.map((t) => [
      ...basicCells(t, f[t]),
      `${fmt(f[t].cpuSpillwayPercent, 0)}% / ${fmt(f[t].cpuRedisPercent, 0)}% / ${fmt(f[t].cpuBenchPercent, 0)}%`,
    ]);
    const md = [
      table(['limiter', 'rps (mean)', 'p50 ms', 'p99 ms', 'responses', 'non-2xx', 'errors', 'CPU spillway / redis / autocannon'], rows),
      '',
      table(
        ['ratio', 'value'],
        [
          ['memory limiter / no limiter rps', pct(ratios.memoryOverNoneRps)],
          ['redis limiter / no limiter rps (aim ≥ 85 %)', pct(ratios.redisOverNoneRps)],
          ['p99 memory / redis vs none', `${signedMs(ratios.memoryMinusNoneP99Ms)} / ${signedMs(ratios.redisMinusNoneP99Ms)}`],
          ['spillway max RSS during the run', `${fmt(rssMaxMb(memory))} MB`],
        ],
      ),
    ].join('\n');

    return scenarioResult({
      scenario: 'ratelimit',
      started,
      settingsText: roundsText(settings),
      settings: { duration, warmup, connections, repeat, method: 'GET', order: TARGETS, apiKeys: 100 },
      record: { figures, ratios, runs, spillway: { memory, log: { lines: gateway.log.lines, warningCount: gateway.log.warningCount, byMsg: gateway.log.byMsg }, config: gateway.configText }, exits: stops },
      md,
      notes: gatewayNotes(gateway, stops.spillway),
    });
  });
}
