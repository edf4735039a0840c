// Telemetry test helpers: scrape and parse GET /metrics; an in-memory OpenTelemetry tracer.

import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { createRequestTracer } from '../../src/telemetry/otel-tracer.js';
import type { PreSampler } from '../../src/telemetry/pre-sampler.js';
import type { RequestTracer } from '../../src/telemetry/tracing.js';
import { startBackend, type TestBackend } from './backend.js';
import { waitUntil } from './wait.js';

/** One scrape: series keyed as `name{label="value",...}` with labels sorted by name. */
export class Scrape {
  readonly series = new Map<string, number>();
  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) continue;
      const labels: Record<string, string> = {};
      for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, '$1');
      this.series.set(seriesKey(match[1]!, labels), Number(match[3]));
    }
  }

  /** The value of one exact series, or undefined when it is absent. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    return this.series.get(seriesKey(name, labels));
  }

  /** Every series of a metric, as `{labels}` → value (labels sorted). */
  all(name: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, value] of this.series) {
      if (key === name || key.startsWith(`${name}{`)) out[key.slice(name.length) || '{}'] = value;
    }
    return out;
  }
}

export function seriesKey(name: string, labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? name : `${name}{${keys.map((key) => `${key}="${labels[key]}"`).join(',')}}`;
}

export async function scrape(adminUrl: string): Promise<Scrape> {
  const response = await fetch(`${adminUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return new Scrape(await response.text());
}

export interface TestTracer {
  tracer: RequestTracer;
  exporter: InMemorySpanExporter;
  /** Waits until at least `count` spans have ended. */
  spans(count: number, timeoutMs?: number): Promise<ReadableSpan[]>;
  shutdown(): Promise<void>;
}

/** A tracer whose spans land in memory, with W3C trace context propagation. */
/** A tracer exporting to memory; with `preSample`, decisions are made before the SDK as in production. */
export function inMemoryTracer(preSample?: PreSampler): TestTracer {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = createRequestTracer(provider.getTracer('spillway-test'), new W3CTraceContextPropagator(), preSample);
  return {
    tracer,
    exporter,
    async spans(count, timeoutMs = 5000) {
      return waitUntil(() => exporter.getFinishedSpans(), {
        timeout: timeoutMs,
        interval: 10,
        until: (spans) => spans.length >= count,
        message: `${count} finished spans`,
      });
    },
    shutdown: () => provider.shutdown(),
  };
}

/** A backend that holds every request until `release()` is called, then answers "done". */
export async function startHeldBackend(): Promise<{ backend: TestBackend; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const backend = await startBackend(async (_req, res) => {
    await held;
    res.end('done');
  });
  return { backend, release };
}

/** Upstreams users and orders, and a fan-out route "dashboard" on /dash with one part on each. */
export function dashboardYaml(usersUrl: string, ordersUrl: string): string {
  return `upstreams:
  users: { backends: [ { url: ${usersUrl} } ] }
  orders: { backends: [ { url: ${ordersUrl} } ] }
routes:
  - name: dashboard
    match: { path: /dash }
    aggregate:
      parts:
        profile: { upstream: users, path: /u }
        orders: { upstream: orders, path: /o }
`;
}
