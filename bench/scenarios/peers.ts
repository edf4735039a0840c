// Scenario "peers": spillway next to its peers in one run (issue 21) — nginx, a bare undici proxy,
// fastify + @fastify/http-proxy — and spillway with metrics off / on / traces 10%. CPU µs per request
// at a fixed rate and at saturation, rps, then tail latency at half of spillway's saturation.

import { forkTarget, startGateway, withTargets, type Gateway } from '../lib/processes.ts';
import { NGINX_BIN, nginxAvailable, startNginx } from '../lib/nginx.ts';
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
import { tailFigures, tailRounds, tailTable } from '../lib/tail.ts';
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { fmt, spreadText, table } from '../lib/format.ts';
import { gatewayYaml } from './passthrough.ts';
import { cpuTable, peerRatios, ratiosTable, tailVerdicts } from './peers-report.ts';

export const title = 'spillway bench — peers';
export const intro = `
spillway next to other reverse proxies, one minimal node:http origin behind all of them, interleaved in
one run: **direct** (the origin), **nginx** (Debian's nginx, 1 worker, upstream keep-alive 64, access log
off; the measured process is its worker), **bare undici proxy** (node:http + one undici \`Pool\`, copy
status/headers, pipe the body: no features), **fastify-proxy** (fastify + @fastify/http-proxy), **spillway
metrics off**, **spillway** (defaults: Prometheus metrics on), **spillway twin** (self-check) and **spillway
traces 10%** (defaults + OTLP/HTTP export of 10% of requests to a sink that drops them). Per target and
round: warm-up, a fixed open-loop rate (CPU µs/req), a closed loop (rps, and CPU µs/req at saturation).
CPU: the probe's \`process.cpuUsage()\` for Node processes, \`/proc/<pid>/task/*/schedstat\` (ns) for nginx's
worker. Then tail latency: every round runs direct, nginx, the bare proxy and spillway at 50% of spillway's
median closed-loop rps for 5 s each; *added* latency = target − direct in the same round, and
spillway's event-loop delay over the run (\`monitorEventLoopDelay\`, 10 ms resolution; delay = timer
interval − 10 ms).
`;

const TAIL_SECONDS = 5;
const TRACED_ENV = (sinkUrl: string): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  OTEL_SERVICE_NAME: 'spillway-bench',
  OTEL_NODE_RESOURCE_DETECTORS: 'env',
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '0.1',
});

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin', probe: true }));
    const url = origin.ready.url;
    const sink = track(await forkTarget('otlp-sink.ts', [], { label: 'otlp-sink' }));
    const nginx = nginxAvailable() ? track(await startNginx(Number(origin.ready.port))) : undefined;
    const bare = track(await forkTarget('bare-proxy.ts', [url], { label: 'bare undici proxy', probe: true }));
    const fastify = track(await forkTarget('fastify-proxy.ts', [url], { label: 'fastify-proxy', probe: true }));
    const gateways: Record<string, Gateway> = {};
    gateways['spillway metrics off'] = track(await startGateway(gatewayYaml(url, { metrics: false }), { label: 'spillway metrics off' }));
    gateways.spillway = track(await startGateway(gatewayYaml(url), { label: 'spillway' }));
    gateways['spillway twin'] = track(await startGateway(gatewayYaml(url), { label: 'spillway twin' }));
    gateways['spillway traces 10%'] = track(
      await startGateway(gatewayYaml(url), { label: 'spillway traces 10%', env: TRACED_ENV(sink.ready.url) }),
    );
    log(
      `origin ${url} (pid ${origin.pid}); ${nginx ? `nginx ${nginx.url} (master ${nginx.masterPid}, worker ${nginx.worker.pid})` : `no nginx (${NGINX_BIN} missing)`}; bare proxy pid ${bare.pid}; fastify-proxy pid ${fastify.pid}; ${Object.entries(
        gateways,
      )
        .map(([n, g]) => `${n} pid ${g.pid}`)
        .join(', ')}; otlp sink pid ${sink.pid}`,
    );

    const get = (base: string): MeasuredTarget['options'] => ({ method: 'GET', url: `${base}/`, pipelining: settings.pipelining });
    const targets: MeasuredTarget[] = [
      { name: 'direct', options: get(url), subject: { label: 'origin', target: origin }, pids: { origin: origin.pid } },
      ...(nginx
        ? [
            {
              name: 'nginx',
              options: get(nginx.url),
              subject: { label: 'nginx worker', target: nginx.worker },
              pids: { 'nginx worker': nginx.worker.pid, origin: origin.pid },
            },
          ]
        : []),
      {
        name: 'bare undici proxy',
        options: get(bare.ready.url),
        subject: { label: 'bare proxy', target: bare },
        pids: { 'bare proxy': bare.pid, origin: origin.pid },
      },
      {
        name: 'fastify-proxy',
        options: get(fastify.ready.url),
        subject: { label: 'fastify-proxy', target: fastify },
        pids: { 'fastify-proxy': fastify.pid, origin: origin.pid },
      },
      ...Object.entries(gateways).map(([name, g]) => ({
        name,
        options: get(g.url),
        subject: { label: 'spillway', target: g },
        pids: { spillway: g.pid, origin: origin.pid, ...(name === 'spillway traces 10%' ? { 'otlp-sink': sink.pid } : {}) },
      })),
    ];
    const runs = await measureRounds({ targets, settings, log, closedCpu: true });
    const figures = allFigures(runs);

    // Tail latency at half of spillway's saturation, interleaved.
    const saturation = figures.spillway!.rps.median ?? 0;
    const tailRate = Math.max(100, Math.round(saturation / 2));
    const tailNames = ['direct', ...(nginx ? ['nginx'] : []), 'bare undici proxy', 'spillway'];
    log(`tail latency: ${tailRate} req/s (50% of spillway's median closed-loop ${fmt(saturation, 0)} rps) × ${TAIL_SECONDS}s per target`);
    const tailSettings = { connections: settings.connections, rate: tailRate, rateDuration: TAIL_SECONDS, slices: settings.slices };
    const tailRuns = await tailRounds({
      targets: targets.filter((t) => tailNames.includes(t.name)),
      settings: tailSettings,
      repeat: settings.repeat,
      log,
    });
    const tail = tailFigures(tailRuns, 'direct');

    const stops = await stopInOrder([
      ...(nginx ? [['nginx', nginx] as [string, typeof nginx]] : []),
      ['bare undici proxy', bare],
      ['fastify-proxy', fastify],
      ...Object.entries(gateways).map(([n, g]): [string, Gateway] => [n, g]),
      ['origin', origin],
    ]);
    const exported = await sink.request<{ requests: number; bytes: number }>({ type: 'stats' }).catch(() => undefined);

    const checks = [selfCheck(figures, 'spillway', 'spillway twin', settings.band)];
    const ratios = peerRatios(figures);
    const verdicts = tailVerdicts(tail);
    const md = [
      figuresTable(figures, {
        extra: { header: 'CPU µs/req closed loop', cell: (_n, f) => spreadText(f.closedCpuUsPerReq, 1) },
      }),
      '',
      '**CPU µs per request** (median [min–max] over the rounds; *least* = the minimum, as "least of three rounds")',
      '',
      cpuTable(figures, runs),
      '',
      '**Ratios** (CPU µs/req and rps; *least* = ratio of the minima)',
      '',
      ratiosTable(ratios),
      '',
      `**Tail latency** at ${fmt(tailRate)} req/s (50% of spillway's median closed-loop rps), ${TAIL_SECONDS}s per target and round, ${settings.connections} connections, ${settings.slices} staggered autocannon instances; latencies per response (sub-ms)`,
      '',
      tailTable(tail, 'direct'),
      '',
      table(
        ['tail target', 'value', 'target', 'met'],
        verdicts.map((v) => [v.name, v.value, v.target, v.met === undefined ? '–' : v.met ? 'yes' : 'no']),
      ),
      '',
      `OTLP exports received (requests / bytes): ${exported ? `${fmt(exported.requests)} / ${fmt(exported.bytes)}` : 'n/a'}`,
    ].join('\n');
    return scenarioResult({
      scenario: 'peers',
      started,
      settingsText: `${roundsText(settings)}; tail ${TAIL_SECONDS}s × ${settings.repeat} rounds at 50% of spillway's saturation`,
      settings: { ...settings, method: 'GET', path: '/', order: targets.map((t) => t.name), tail: { ...tailSettings, targets: tailNames } },
      record: {
        figures,
        ratios,
        tail: { rate: tailRate, saturationRps: saturation, figures: tail, verdicts, runs: tailRuns },
        runs,
        exported,
        nginxConfig: nginx?.config,
        configs: Object.fromEntries(Object.entries(gateways).map(([n, g]) => [n, g.configText])),
        exits: stops,
      },
      md,
      notes: [
        ...(nginx ? [] : [`nginx skipped: ${NGINX_BIN} is missing`]),
        ...Object.entries(gateways).flatMap(([n, g]) => gatewayNotes(g, stops[n], { name: n, nodeArgs: n === 'spillway' })),
      ],
      summary: { settings: { ...settings }, figures, selfCheck: checks, ratios: ratios as unknown as Record<string, unknown> },
    });
  });
}
