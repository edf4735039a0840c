// The sampling decision made before any OpenTelemetry code runs, so that a request the sampler
// would not record costs a header parse and a branch — no span, no context, no SDK call. The
// decision follows the standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG settings (default
// parentbased_always_on); the SDK is then told to record everything it is handed.
// Samplers this does not know (jaeger_remote, xray, …) leave the decision to the SDK.

import { randomFillSync } from 'node:crypto';

/** A W3C traceparent the client sent. */
export interface IncomingTrace {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/** true: record this request (through the SDK); false: do not. */
export type PreSampler = (incoming: IncomingTrace | undefined) => boolean;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Parses a traceparent header (version 00 and later versions' known prefix); undefined when invalid. */
export function parseTraceparent(header: string | string[] | undefined): IncomingTrace | undefined {
  if (typeof header !== 'string') return undefined;
  const match = TRACEPARENT.exec(header.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || (version === '00' && header.trim().length !== 55)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

/** The SDK's TraceIdRatioBased rule (XOR of the trace id's four 32-bit words against the ratio), so services agree. */
export function traceIdRatioSampled(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  let accumulation = 0;
  for (let i = 0; i < 32; i += 8) accumulation = (accumulation ^ Number.parseInt(traceId.slice(i, i + 8), 16)) >>> 0;
  return accumulation < Math.floor(ratio * 4294967295);
}

function ratioFrom(arg: string | undefined): number {
  const ratio = arg === undefined || arg.trim() === '' ? 1 : Number(arg);
  return Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
}

/**
 * The pre-sampler for the OTEL_TRACES_SAMPLER environment, or undefined for a sampler it does
 * not know. `random` draws the decision for a new trace (its id is made by the SDK afterwards).
 */
export function preSamplerFromEnv(env: NodeJS.ProcessEnv, random: () => number = Math.random): PreSampler | undefined {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase() || 'parentbased_always_on';
  const ratio = ratioFrom(env.OTEL_TRACES_SAMPLER_ARG);
  switch (name) {
    case 'always_on':
      return () => true;
    case 'always_off':
      return () => false;
    case 'traceidratio':
      return (incoming) => (incoming ? traceIdRatioSampled(incoming.traceId, ratio) : random() < ratio);
    case 'parentbased_always_on':
      return (incoming) => (incoming ? incoming.sampled : true);
    case 'parentbased_always_off':
      return (incoming) => (incoming ? incoming.sampled : false);
    case 'parentbased_traceidratio':
      return (incoming) => (incoming ? incoming.sampled : random() < ratio);
    default:
      return undefined;
  }
}

const pool = Buffer.allocUnsafe(4096);
let poolAt = pool.length;

/** `bytes` random bytes as lower-case hex: one string from a pooled random buffer. */
export function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}
