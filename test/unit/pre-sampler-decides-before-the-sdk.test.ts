// The sampling decision made before any OpenTelemetry code: the standard OTEL_TRACES_SAMPLER
// names, W3C traceparent parsing, and the SDK's own trace-id ratio rule (so services agree).

import { TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { parseTraceparent, preSamplerFromEnv, traceIdRatioSampled } from '../../src/telemetry/pre-sampler.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';
const sampledParent = { traceId: TRACE, spanId: SPAN, sampled: true };
const unsampledParent = { traceId: TRACE, spanId: SPAN, sampled: false };

describe('traceparent', () => {
  it('reads trace id, span id and the sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual(sampledParent);
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)).toEqual(unsampledParent);
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.sampled).toBe(true);
  });

  it('refuses malformed, all-zero, version ff and a version 00 with extra fields', () => {
    for (const bad of [
      undefined,
      ['a', 'b'],
      '',
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
      `00-${TRACE}-${SPAN}`,
    ]) {
      expect(parseTraceparent(bad as string | undefined), String(bad)).toBeUndefined();
    }
    // a later version may add fields after the known ones
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`)).toEqual(sampledParent);
  });
});

describe('OTEL_TRACES_SAMPLER before the SDK', () => {
  const decide = (env: NodeJS.ProcessEnv, random = () => 0.5) => preSamplerFromEnv(env, random)!;

  it('default parentbased_always_on: new traces recorded, a caller’s decision followed', () => {
    const sample = decide({});
    expect(sample(undefined)).toBe(true);
    expect(sample(sampledParent)).toBe(true);
    expect(sample(unsampledParent)).toBe(false);
  });

  it('parentbased_traceidratio: new traces by the ratio, callers followed', () => {
    const env = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' };
    expect(decide(env, () => 0.05)(undefined)).toBe(true);
    expect(decide(env, () => 0.1)(undefined)).toBe(false);
    expect(decide(env, () => 0.99)(sampledParent)).toBe(true);
    expect(decide(env, () => 0)(unsampledParent)).toBe(false);
  });

  it('traceidratio ignores the caller and agrees with the SDK on every trace id', () => {
    for (const ratio of [0, 0.1, 0.5, 0.9, 1]) {
      const sdk = new TraceIdRatioBasedSampler(ratio);
      const sample = decide({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: String(ratio) });
      for (let i = 0; i < 500; i++) {
        const traceId = Array.from({ length: 4 }, () => ((Math.random() * 2 ** 32) >>> 0).toString(16).padStart(8, '0')).join('');
        const sdkSays = sdk.shouldSample(ROOT_CONTEXT, traceId).decision === 2;
        expect(traceIdRatioSampled(traceId, ratio), `${traceId} at ${ratio}`).toBe(sdkSays);
        expect(sample({ traceId, spanId: SPAN, sampled: !sdkSays })).toBe(sdkSays);
      }
    }
  });

  it('always_on, always_off, parentbased_always_off; an unknown sampler is left to the SDK', () => {
    expect(decide({ OTEL_TRACES_SAMPLER: 'always_on' })(unsampledParent)).toBe(true);
    expect(decide({ OTEL_TRACES_SAMPLER: 'always_off' })(sampledParent)).toBe(false);
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' })(undefined)).toBe(false);
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' })(sampledParent)).toBe(true);
    expect(preSamplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toBeUndefined();
  });

  it('a missing or unreadable ratio means 1, and the ratio is clamped to 0…1', () => {
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }, () => 0.999)(undefined)).toBe(true);
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: 'lots' }, () => 0.999)(undefined)).toBe(true);
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '-3' }, () => 0)(undefined)).toBe(false);
  });
});
