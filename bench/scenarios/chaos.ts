// Scenario "chaos": everything breaks at once, nothing is lost. ~500 req/s of mixed traffic (GETs,
// and POSTs carrying Idempotency-Key that the client retries on 409/429/502/503/504 until answered)
// through spillway to three origins and Redis (appendonly yes), each its own process. Every ~5 s one
// origin is killed (SIGKILL) or stopped gracefully and started again; every ~15 s Redis is killed and
// started again; once the config is reloaded. The origins record every POST they apply in one shared
// ledger file, keyed by Idempotency-Key.
// Exported `chaos(seconds)` is also run, shorter, by test/system/chaos.test.ts.

import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { configHead, forkTarget, startGateway, withTargets, type Forked } from '../lib/processes.ts';
import { sleep } from '../lib/load.ts';
import { startPersistentRedis } from '../lib/redis.ts';
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import type { Log, Settings } from '../lib/rounds.ts';
import { fmt, table } from '../lib/format.ts';
import { percentile } from '../lib/stats.ts';

export const title = 'spillway bench — chaos (backends and Redis killed under mixed traffic)';
export const intro = `
60 s of ~500 req/s: 70 % GET, 30 % POST with a fresh \`Idempotency-Key\` that the client sends again on
409/429/502/503/504 (or a reset) until it gets an answer. Three origins and Redis (\`appendonly yes\`,
\`appendfsync always\`) each in their own process; every 5 s one origin is killed (SIGKILL) or stopped
gracefully, and started again 1.5 s later; every 15 s Redis is killed and started again 1 s later; at 30 s the
config is reloaded. The origins write every POST they apply to one ledger file.

Targets: GETs failed while a backend lives 0; keyed POSTs never answered 0; keys applied more than once 0;
gateway restarts or uncaught errors 0. Reported: p99 latency in the second after each fault vs calm.
`;

export const budgetSeconds = 120;

const RATE = 500;
const POST_SHARE = 0.3;
const GIVE_UP_MS = 30_000;
const RETRY_ON = new Set([409, 429, 502, 503, 504]);

function gatewayYaml(urls: string[], redisUrl: string, weight = 1): string {
  return `${configHead('bench/scenarios/chaos.ts')}redis: { url: ${redisUrl}, commandTimeout: 200ms }
upstreams:
  app:
    balance: round-robin
    backends:
${urls.map((url) => `      - { url: ${url}, weight: ${weight} }`).join('\n')}
    timeouts: { headers: 5s }
routes:
  - match: { path: /orders, methods: [POST] }
    upstream: app
    idempotency: { ttl: 10m }
  - upstream: app
`;
}

export interface ChaosFigures {
  seconds: number;
  gets: number;
  getsFailed: number;
  getFailures: Record<string, number>;
  posts: number;
  postsAnswered: number;
  postsNeverAnswered: number;
  postAttempts: number;
  postStatuses: Record<string, number>;
  keysApplied: number;
  keysAppliedTwice: number;
  gatewayRestarts: number;
  gatewayErrors: number;
  events: { at: number; what: string }[];
  p99CalmMs: number | undefined;
  p99FaultMs: number | undefined;
  postAnswerP99Ms: number | undefined;
}

/** Runs the chaos for `seconds` and returns its figures. */
export async function chaos(seconds: number, log: Log): Promise<{ figures: ChaosFigures; notes: string[]; config: string | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-chaos-'));
  const ledger = join(dir, 'ledger.txt');
  writeFileSync(ledger, '');
  return withTargets(async ({ track, stopInOrder }) => {
    const redis = track(await startPersistentRedis());
    const start = async (name: string, port = 0): Promise<Forked> =>
      track(await forkTarget('restartable-origin.ts', [String(port), name, ledger], { label: `origin-${name}` }));
    const origins = [await start('a'), await start('b'), await start('c')];
    const ports = origins.map((o) => Number(o.ready.port));
    const gateway = track(
      await startGateway(
        gatewayYaml(
          origins.map((o) => o.ready.url),
          redis.url,
        ),
        { probe: false },
      ),
    );
    const gatewayPid = gateway.pid;
    log(`origins ${origins.map((o) => o.ready.url).join(' ')}, redis ${redis.url}, spillway ${gateway.url}`);

    const agent = new Agent({ connections: 200, pipelining: 1, keepAliveTimeout: 10_000 });
    const t0 = Date.now();
    const events: { at: number; what: string }[] = [];
    const note = (what: string) => {
      events.push({ at: Date.now() - t0, what });
      log(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    };
    const getLatencies: { at: number; ms: number }[] = [];
    const getFailures: Record<string, number> = {};
    let gets = 0;
    let posts = 0;
    let postsAnswered = 0;
    let postAttempts = 0;
    const postStatuses: Record<string, number> = {};
    const postTimes: number[] = [];
    const pending = new Set<Promise<void>>();

    const oneGet = async () => {
      gets++;
      const started = Date.now();
      try {
        const res = await request(`${gateway.url}/items`, { dispatcher: agent, headersTimeout: 15_000, bodyTimeout: 15_000 });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) getFailures[res.statusCode] = (getFailures[res.statusCode] ?? 0) + 1;
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'error';
        getFailures[code] = (getFailures[code] ?? 0) + 1;
      }
      getLatencies.push({ at: started - t0, ms: Date.now() - started });
    };
    const onePost = async () => {
      posts++;
      const key = randomUUID();
      const body = JSON.stringify({ order: key });
      const started = Date.now();
      while (Date.now() - started < GIVE_UP_MS) {
        postAttempts++;
        let wait = 200;
        try {
          const res = await request(`${gateway.url}/orders`, {
            method: 'POST',
            dispatcher: agent,
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body,
            headersTimeout: 15_000,
            bodyTimeout: 15_000,
          });
          await res.body.arrayBuffer();
          postStatuses[res.statusCode] = (postStatuses[res.statusCode] ?? 0) + 1;
          if (!RETRY_ON.has(res.statusCode)) {
            postsAnswered++;
            postTimes.push(Date.now() - started);
            return;
          }
          const hint = Number(res.headers['retry-after-ms']);
          if (Number.isFinite(hint) && hint > 0) wait = Math.min(1_000, hint);
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'error';
          postStatuses[code] = (postStatuses[code] ?? 0) + 1;
        }
        await sleep(wait);
      }
    };

    // Open-loop load: RATE requests per second in 10 ms ticks.
    let running = true;
    const loader = (async () => {
      let sent = 0;
      while (running) {
        const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
        for (; sent < due; sent++) {
          const p = Math.random() < POST_SHARE ? onePost() : oneGet();
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        await sleep(10);
      }
    })();

    // Fault schedule.
    const at = (s: number) => sleep(t0 + s * 1000 - Date.now());
    const schedule: { s: number; run: () => Promise<void> }[] = [];
    for (let s = 5, k = 0; s < seconds - 2; s += 5, k++) {
      const i = k % 3;
      const graceful = k % 2 === 1;
      schedule.push({
        s,
        run: async () => {
          const origin = origins[i]!;
          if (graceful) {
            note(`origin ${'abc'[i]} stopped gracefully`);
            await origin.stop();
          } else {
            note(`origin ${'abc'[i]} killed (SIGKILL)`);
            origin.child.kill('SIGKILL');
            await once(origin.child, 'exit');
          }
          await sleep(1_500);
          origins[i] = await start('abc'[i]!, ports[i]);
          note(`origin ${'abc'[i]} restarted`);
        },
      });
    }
    for (let s = 7.5; s < seconds - 2; s += 15)
      schedule.push({
        s,
        run: async () => {
          note('redis killed (SIGKILL)');
          await redis.kill();
          await sleep(1_000);
          await redis.restart();
          note('redis restarted');
        },
      });
    schedule.push({
      s: Math.min(30, seconds / 2),
      run: async () => {
        writeFileSync(
          gateway.configPath,
          gatewayYaml(
            origins.map((o) => o.ready.url),
            redis.url,
            2,
          ),
        );
        const res = await fetch(`${gateway.admin}/admin/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
        note(`config reloaded (${res.status})`);
      },
    });
    schedule.sort((x, y) => x.s - y.s);
    const faults = schedule.map(async ({ s, run }) => {
      await at(s);
      await run();
    });
    await at(seconds);
    running = false;
    await loader;
    await Promise.all(faults);
    await Promise.all([...pending]);
    await agent.close();

    const alive = gateway.child.exitCode === null && gateway.child.signalCode === null && gateway.pid === gatewayPid;
    const stops = await stopInOrder([['spillway', gateway]]);
    const applied = new Map<string, number>();
    if (existsSync(ledger))
      for (const line of readFileSync(ledger, 'utf8').split('\n')) {
        const key = line.split(' ')[0];
        if (key) applied.set(key, (applied.get(key) ?? 0) + 1);
      }
    const faultStarts = events.filter((e) => /killed|stopped/.test(e.what)).map((e) => e.at);
    const inFault = (t: number) => faultStarts.some((f) => t >= f && t < f + 2_000);
    const sorted = (xs: number[]) => xs.sort((x, y) => x - y);
    const calm = sorted(getLatencies.filter((l) => !inFault(l.at)).map((l) => l.ms));
    const faulty = sorted(getLatencies.filter((l) => inFault(l.at)).map((l) => l.ms));
    const errorMsgs = Object.entries(gateway.log.byMsg).filter(([msg]) => /uncaught|unhandled|failed inside the gateway/i.test(msg));
    const figures: ChaosFigures = {
      seconds,
      gets,
      getsFailed: Object.values(getFailures).reduce((x, y) => x + y, 0),
      getFailures,
      posts,
      postsAnswered,
      postsNeverAnswered: posts - postsAnswered,
      postAttempts,
      postStatuses,
      keysApplied: applied.size,
      keysAppliedTwice: [...applied.values()].filter((n) => n > 1).length,
      gatewayRestarts: alive ? 0 : 1,
      gatewayErrors: errorMsgs.reduce((n, [, count]) => n + count, 0),
      events,
      p99CalmMs: percentile(calm, 99),
      p99FaultMs: percentile(faulty, 99),
      postAnswerP99Ms: percentile(sorted(postTimes), 99),
    };
    return { figures, notes: gatewayNotes(gateway, stops.spillway!), config: gateway.configText };
  });
}

export async function run(_settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  const { figures: f, notes, config } = await chaos(60, log);
  const checks = {
    getsFailed: f.getsFailed === 0,
    postsNeverAnswered: f.postsNeverAnswered === 0,
    keysAppliedTwice: f.keysAppliedTwice === 0,
    gatewayRestartsOrErrors: f.gatewayRestarts + f.gatewayErrors === 0,
  };
  const ok = (pass: boolean) => (pass ? 'ok' : '**MISSED**');
  const md = table(
    ['metric', 'value', 'target', ''],
    [
      ['GETs sent', fmt(f.gets), '', ''],
      ['GETs failed (a backend always lives)', `${fmt(f.getsFailed)} ${JSON.stringify(f.getFailures)}`, '0', ok(checks.getsFailed)],
      ['keyed POSTs sent / answered', `${fmt(f.posts)} / ${fmt(f.postsAnswered)} (${fmt(f.postAttempts)} attempts)`, '', ''],
      ['keyed POSTs never answered after retries', fmt(f.postsNeverAnswered), '0', ok(checks.postsNeverAnswered)],
      ['POST answers by status', JSON.stringify(f.postStatuses), '', ''],
      [
        'keys applied (ledger) / applied more than once',
        `${fmt(f.keysApplied)} / ${fmt(f.keysAppliedTwice)}`,
        '0',
        ok(checks.keysAppliedTwice),
      ],
      ['gateway restarts / uncaught errors', `${f.gatewayRestarts} / ${f.gatewayErrors}`, '0', ok(checks.gatewayRestartsOrErrors)],
      ['GET latency p99: calm / within 2 s of a fault', `${fmt(f.p99CalmMs, 1)} / ${fmt(f.p99FaultMs, 1)} ms`, '', ''],
      ['keyed POST time to answer p99 (with retries)', `${fmt(f.postAnswerP99Ms, 0)} ms`, '', ''],
      ['faults', `${f.events.length} events`, '', ''],
    ],
  );
  return scenarioResult({
    scenario: 'chaos',
    started,
    settingsText: `60 s at ${RATE} req/s (${POST_SHARE * 100}% keyed POST)`,
    settings: { seconds: 60, rate: RATE, postShare: POST_SHARE, giveUpMs: GIVE_UP_MS },
    record: { checks, figures: f, config },
    md,
    notes,
    passed: Object.values(checks).every(Boolean),
  });
}
