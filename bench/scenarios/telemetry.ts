// Scenario "telemetry": what do metrics and traces cost on the pass-through hot path?
// One origin; six spillway processes with the same route, differing only in telemetry (an "off" twin
// is the self-check). Request logs are off in all of them.

import { benchUrl } from '../lib/paths.ts';
import { configHead, forkTarget, startGateway, withTargets, type Gateway } from '../lib/processes.ts';
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
import { gatewayNotes, scenarioResult, type ScenarioResult } from '../lib/results.ts';
import { fmt, pct, table } from '../lib/format.ts';
import { relDiff } from '../lib/stats.ts';

export const title = 'spillway bench — telemetry';
export const intro = `
Pass-through (one minimal node:http origin, GET \`/\`) through spillway processes that differ only in
telemetry: **off** (\`metrics.enabled: false\`, tracing off) and its identical **off twin** (the noise
self-check), **metrics** (Prometheus, the default), **metrics+traces 10%** (OpenTelemetry,
\`OTEL_TRACES_SAMPLER=parentbased_traceidratio\`, \`OTEL_TRACES_SAMPLER_ARG=0.1\`, exported over OTLP/HTTP
to a local sink that drops them), **metrics+traces** (every request traced, same export) and
**metrics+traces no-op export** (every request traced, the SDK's exporter drops each batch unserialised).
Request logs off in all (\`log.requests.sample: 0\`). Interleaved rounds; per target and round: warm-up,
fixed open-loop rate (spillway CPU µs and heap bytes per request), closed loop (rps, p99).
`;

const NOOP_EXPORT = benchUrl('preload/noop-export.ts');

export const TARGETS = ['off', 'off twin', 'metrics', 'metrics+traces 10%', 'metrics+traces', 'metrics+traces no-op export'] as const;

export function gatewayYaml(originUrl: string, target: string): string {
  return `${configHead(`bench/scenarios/telemetry.ts (${target})`)}metrics: { enabled: ${!target.startsWith('off')} }
log: { requests: { sample: 0 } }
upstreams:
  origin:
    backends:
      - { url: ${originUrl} }
routes:
  - { name: all, match: { path: / }, upstream: origin }
`;
}

export async function run(settings: Settings, log: Log): Promise<ScenarioResult> {
  const started = new Date();
  return withTargets(async ({ track, stopInOrder }) => {
    const origin = track(await forkTarget('origin.ts', [], { label: 'origin' }));
    const sink = track(await forkTarget('otlp-sink.ts', [], { label: 'otlp-sink' }));
    const gateways: Record<string, Gateway> = {};
    for (const target of TARGETS) {
      const traced: Record<string, string> = {
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.ready.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_SERVICE_NAME: 'spillway-bench',
        OTEL_NODE_RESOURCE_DETECTORS: 'env',
      };
      const env =
        target === 'metrics+traces 10%'
          ? { ...traced, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }
          : target.startsWith('metrics+traces')
            ? traced
            : { OTEL_TRACES_EXPORTER: 'none' };
      const nodeArgs = target === 'metrics+traces no-op export' ? ['--import', NOOP_EXPORT] : [];
      gateways[target] = track(await startGateway(gatewayYaml(origin.ready.url, target), { label: `spillway-${target}`, env, nodeArgs }));
    }
    log(
      `origin ${origin.ready.url}, otlp sink ${sink.ready.url}; spillway ${TARGETS.map((t) => `${t} pid ${gateways[t]!.pid}`).join(', ')}`,
    );
    const targets: MeasuredTarget[] = TARGETS.map((t) => ({
      name: t,
      options: { method: 'GET', url: `${gateways[t]!.url}/` },
      subject: { label: 'spillway', target: gateways[t]! },
      pids: { spillway: gateways[t]!.pid, origin: origin.pid, ...(t.startsWith('metrics+traces') ? { 'otlp-sink': sink.pid } : {}) },
    }));
    const runs = await measureRounds({ targets, settings, log });
    // The traced gateways flush their last batch on SIGTERM; the sink's counters then say what arrived.
    const stops = await stopInOrder(TARGETS.map((t) => [t, gateways[t]!]));
    const exported = await sink.request<{ requests: number; bytes: number }>({ type: 'stats' }).catch(() => undefined);

    const figures = allFigures(runs);
    const checks = [selfCheck(figures, 'off', 'off twin', settings.band)];
    const vsOff = (t: string): { cpuUsPerReq: number | undefined; bytesPerReq: number | undefined; rps: number | undefined } => ({
      cpuUsPerReq: relDiff(figures.off!.cpuUsPerReq.median, figures[t]!.cpuUsPerReq.median),
      bytesPerReq: relDiff(figures.off!.bytesPerReq.median, figures[t]!.bytesPerReq.median),
      rps: relDiff(figures.off!.rps.median, figures[t]!.rps.median),
    });
    const ratios = Object.fromEntries(TARGETS.filter((t) => !t.startsWith('off')).map((t) => [t, vsOff(t)]));
    const md = [
      figuresTable(figures, { label: 'telemetry' }),
      '',
      table(
        ['vs off (medians)', 'CPU µs/req', 'bytes/req', 'rps'],
        Object.entries(ratios).map(([t, r]) => [t, pct(r.cpuUsPerReq), pct(r.bytesPerReq), pct(r.rps)]),
      ),
      '',
      `OTLP exports received (requests / bytes): ${exported ? `${fmt(exported.requests)} / ${fmt(exported.bytes)}` : 'n/a'}`,
    ].join('\n');
    return scenarioResult({
      scenario: 'telemetry',
      started,
      settingsText: roundsText(settings),
      settings: { ...settings, method: 'GET', path: '/', order: [...TARGETS] },
      record: {
        figures,
        ratiosVsOff: ratios,
        runs,
        exported,
        configs: Object.fromEntries(TARGETS.map((t) => [t, gateways[t]!.configText])),
        exits: stops,
      },
      md,
      notes: TARGETS.flatMap((t) => gatewayNotes(gateways[t]!, stops[t], { name: `spillway (${t})` })),
      summary: { settings: { ...settings }, figures, selfCheck: checks, ratios: ratios as Record<string, unknown> },
    });
  });
}
