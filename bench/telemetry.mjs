// Scenario "telemetry": what do metrics and traces cost on the pass-through hot path?
//
// One origin (origin.mjs). Five spillway processes with the same route, differing only in
// telemetry: "off" (metrics.enabled false, no request log, no OTEL_* variables), "metrics"
// (Prometheus metrics on, the default), "metrics+traces no-op export" (metrics on, every request
// traced, the SDK's OTLP exporter replaced by one that drops each batch: noop-export.mjs),
// "metrics+traces" (the same, exported over OTLP/HTTP to otlp-sink.mjs, which accepts and drops
// every batch) and the same with 10% of traces sampled (OTEL_TRACES_SAMPLER=parentbased_traceidratio).
// Request logs are off in all five (log.requests.sample: 0) so stdout does not dominate. Same autocannon
// settings; with --repeat N the targets are interleaved and averaged.

import { fileURLToPath } from 'node:url';
import { fmt, forkTarget, pct, sampleProcess, startGateway, table } from './lib.mjs';
import { averageFigures, basicCells, configHead, cpuMean, gatewayNotes, measureRounds, roundsText, rssMaxMb, scenarioResult, withOrigin } from './compare.mjs';

export const title = 'spillway bench — telemetry';
export const intro = `
Pass-through (one minimal node:http origin, GET \`/\`, closed loop) through five spillway processes that
differ only in telemetry: **off** (\`metrics.enabled: false\`, no request log, tracing off), **metrics**
(Prometheus metrics, the default), **metrics+traces no-op export** (every request traced; the SDK's
exporter drops each batch without serialising it — the issue's "tracing to a no-op exporter"),
**metrics+traces** (metrics plus an OpenTelemetry server span per
request and a client span per attempt, W3C traceparent injected, exported in batches over OTLP/HTTP to a
local receiver that drops them) and **metrics+traces 10%** (the same, \`OTEL_TRACES_SAMPLER=parentbased_traceidratio\`,
\`OTEL_TRACES_SAMPLER_ARG=0.1\`: every request still gets a traceparent, one in ten is recorded). Request logs are off in all five (\`log.requests.sample: 0\`). Each
measured run follows a warm-up; latency in ms; rps is autocannon's mean of per-second samples.
`;

const TARGETS = ['off', 'metrics', 'metrics+traces no-op export', 'metrics+traces', 'metrics+traces 10%'];
const NOOP_EXPORT = fileURLToPath(new URL('./noop-export.mjs', import.meta.url));

export function gatewayYaml(originUrl, target) {
  return `${configHead(`bench/telemetry.mjs (${target})`)}metrics: { enabled: ${target !== 'off'} }
log: { requests: { sample: 0 } }
upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
routes:
  - { name: all, match: { path: / }, upstream: origin }
`;
}

export async function run(settings, log) {
  const { duration, warmup, connections, repeat } = settings;
  const started = new Date();
  return withOrigin(async ({ origin, track, stopInOrder }) => {
    const sink = track(await forkTarget('otlp-sink.mjs', [], { label: 'otlp-sink' }));
    const gateways = {};
    for (const target of TARGETS) {
      const traced = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.ready.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'spillway-bench', OTEL_NODE_RESOURCE_DETECTORS: 'env' };
      const env = target === 'metrics+traces' || target === 'metrics+traces no-op export'
        ? traced
        : target === 'metrics+traces 10%'
          ? { ...traced, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }
          : { OTEL_TRACES_EXPORTER: 'none' };
      const nodeArgs = target === 'metrics+traces no-op export' ? ['--import', NOOP_EXPORT] : [];
      gateways[target] = track(await startGateway(gatewayYaml(origin.ready.url, target), { label: `spillway-${target}`, env, nodeArgs }));
    }
    log(`origin ${origin.ready.url}, otlp sink ${sink.ready.url}; spillway ${TARGETS.map((t) => `${t} ${gateways[t].url} (pid ${gateways[t].pid})`).join(', ')}`);

    const rss = Object.fromEntries(TARGETS.map((t) => [t, sampleProcess(gateways[t].pid)]));
    const runs = await measureRounds({
      ...settings,
      targets: TARGETS,
      log,
      options: (target) => ({ connections, pipelining: 1, method: 'GET', url: `${gateways[target].url}/` }),
      pids: (target) => ({ origin: origin.pid, spillway: gateways[target].pid, ...(target.startsWith('metrics+traces') ? { 'otlp-sink': sink.pid } : {}) }),
    });
    const memory = Object.fromEntries(TARGETS.map((t) => [t, rss[t].stop()]));

    // The traced gateway flushes its last batch on SIGTERM; the sink's counters then say what arrived.
    const stops = await stopInOrder(TARGETS.map((t) => [t, gateways[t]]));
    const exported = await sink.request({ type: 'stats' }).catch(() => undefined);

    const figures = averageFigures(TARGETS, runs, {
      more: (r, t) => ({ cpuSpillwayPercent: cpuMean(r, 'spillway'), cpuBenchPercent: cpuMean(r, 'bench'), rssMaxMb: rssMaxMb(memory[t]) }),
    });
    const f = figures;
    const ratios = {
      metricsOverOffRps: f.metrics.rpsMean / f.off.rpsMean,
      tracesOverOffRps: f['metrics+traces'].rpsMean / f.off.rpsMean,
      noopTracesOverOffRps: f['metrics+traces no-op export'].rpsMean / f.off.rpsMean,
      metricsMinusOffP99Ms: f.metrics.latencyP99Ms - f.off.latencyP99Ms,
      tracesMinusOffP99Ms: f['metrics+traces'].latencyP99Ms - f.off.latencyP99Ms,
      sampledTracesOverOffRps: f['metrics+traces 10%'].rpsMean / f.off.rpsMean,
    };
    const rows = TARGETS.map((t) => [...basicCells(t, f[t]), `${fmt(f[t].cpuSpillwayPercent, 0)}% / ${fmt(f[t].cpuBenchPercent, 0)}%`, fmt(f[t].rssMaxMb)]);
    const md = [
      table(['telemetry', 'rps (mean)', 'p50 ms', 'p99 ms', 'responses', 'non-2xx', 'errors', 'CPU spillway / autocannon', 'max RSS MB'], rows),
      '',
      table(['ratio', 'value'], [
        ['metrics / off rps', pct(ratios.metricsOverOffRps)],
        ['metrics+traces no-op export / off rps (aim ≥ 90%)', pct(ratios.noopTracesOverOffRps)],
        ['metrics+traces OTLP / off rps', pct(ratios.tracesOverOffRps)],
        ['metrics+traces 10% sampled / off rps', pct(ratios.sampledTracesOverOffRps)],
        ['p99 metrics − off', `${fmt(ratios.metricsMinusOffP99Ms, 1)} ms`],
        ['p99 metrics+traces − off', `${fmt(ratios.tracesMinusOffP99Ms, 1)} ms`],
        ['OTLP exports received (requests / bytes)', exported ? `${fmt(exported.requests)} / ${fmt(exported.bytes)}` : 'n/a'],
      ]),
    ].join('\n');

    return scenarioResult({
      scenario: 'telemetry',
      started,
      settingsText: roundsText(settings),
      settings: { duration, warmup, connections, repeat, method: 'GET', path: '/', order: TARGETS },
      record: { figures, ratios, runs, exported, configs: Object.fromEntries(TARGETS.map((t) => [t, gateways[t].configText])), exits: stops },
      md,
      notes: TARGETS.flatMap((t) => gatewayNotes(gateways[t], stops[t], { name: `spillway (${t})` })),
    });
  });
}
