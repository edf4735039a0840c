// OpenTelemetry tracing, off by default. It is switched on by the standard environment
// variables — OTEL_TRACES_EXPORTER (otlp, console; "none" = off) or an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) — and OTEL_SDK_DISABLED=true
// switches it off again. Only then is the SDK loaded (dynamic import): with tracing off, no
// OpenTelemetry code is loaded and requests pay nothing for it.

import type { Tracing } from './trace-types.js';

export type { RequestTracer, ServerTrace, Tracing } from './trace-types.js';

function isTrue(value: string | undefined): boolean {
  return value !== undefined && value.trim().toLowerCase() === 'true';
}

/** Whether the OTEL_* environment asks for traces. */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (isTrue(env.OTEL_SDK_DISABLED)) return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes('none')) return false;
  if (exporters.length > 0) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** The SDK's sampler when the pre-sampler decides: record and sample what it is handed (SamplingDecision 2). */
const RECORD_ALL = {
  shouldSample: () => ({ decision: 2 as const }),
  toString: () => 'spillway pre-sampled',
};

/** Starts the OpenTelemetry Node SDK (traces only) when the environment asks for it. */
export async function startTracingFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined;
  const [{ NodeSDK }, api, { createRequestTracer, explicitContextManager }, { preSamplerFromEnv }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/api'),
    import('./otel-tracer.js'),
    import('./pre-sampler.js'),
  ]);
  // The sampling decision is made before the SDK is asked (pre-sampler.ts); what reaches the
  // SDK is recorded. A sampler the pre-sampler does not know stays the SDK's to apply.
  const preSample = preSamplerFromEnv(env);
  const sdk = new NodeSDK({
    // Only traces: metrics are Prometheus (GET /metrics), logs are pino on stdout.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
    // Context is passed explicitly (otel-tracer.ts): no AsyncLocalStorage context manager
    // following every callback and promise of the process.
    contextManager: explicitContextManager(),
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: 'spillway' }),
    ...(preSample ? { sampler: RECORD_ALL } : {}),
  });
  sdk.start();
  return {
    tracer: createRequestTracer(api.trace.getTracer('spillway'), api.propagation, preSample),
    shutdown: () => sdk.shutdown(),
  };
}
