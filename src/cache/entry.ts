// One stored answer: status, headers (as the cache policy sees them), body, and the cache
// policy's state. Memory stores keep it as it is; Redis stores it as bytes (encode/decode).

import CachePolicy from 'http-cache-semantics';

export interface CacheEntry {
  /** Path + query (normalised): what purges by prefix match. */
  readonly target: string;
  readonly policy: CachePolicy;
  readonly body: Buffer;
  /** The answer was a text/event-stream: replayed as a stream (no content-length). */
  readonly stream: boolean;
  /** Retention in the store from the moment it was stored (freshness + stale windows). */
  readonly retainMs: number;
  /** The route's staleIfError at store time (ms). */
  readonly staleIfErrorMs: number;
}

/** A marker at the primary key: the answer varies by these request headers. */
export interface VaryMarker {
  readonly target: string;
  readonly vary: readonly string[];
  readonly retainMs: number;
}

export type StoredValue = CacheEntry | VaryMarker;

export function isVaryMarker(value: StoredValue): value is VaryMarker {
  return 'vary' in value;
}

/** Bytes a stored value costs: body, target, and the policy's headers (counted once, when stored). */
export function storedSize(value: StoredValue): number {
  if (isVaryMarker(value)) return 64 + value.target.length + value.vary.join(',').length;
  return 128 + value.target.length + value.body.length + JSON.stringify(value.policy.toObject()).length;
}

interface EncodedMeta {
  t: string;
  p?: object;
  s?: boolean;
  r: number;
  e?: number;
  v?: readonly string[];
}

/** [4-byte meta length][meta JSON][body]. */
export function encodeValue(value: StoredValue): Buffer {
  const meta: EncodedMeta = isVaryMarker(value)
    ? { t: value.target, r: value.retainMs, v: value.vary }
    : { t: value.target, r: value.retainMs, p: value.policy.toObject(), s: value.stream, e: value.staleIfErrorMs };
  const json = Buffer.from(JSON.stringify(meta));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(json.length, 0);
  return Buffer.concat([head, json, isVaryMarker(value) ? Buffer.alloc(0) : value.body]);
}

/** undefined when the bytes are not an entry (foreign or corrupt data is a miss, never an error). */
export function decodeValue(bytes: Buffer): StoredValue | undefined {
  try {
    if (bytes.length < 4) return undefined;
    const length = bytes.readUInt32BE(0);
    if (4 + length > bytes.length) return undefined;
    const meta = JSON.parse(bytes.subarray(4, 4 + length).toString('utf8')) as EncodedMeta;
    if (typeof meta.t !== 'string' || typeof meta.r !== 'number') return undefined;
    if (meta.v !== undefined) return { target: meta.t, vary: meta.v, retainMs: meta.r };
    if (meta.p === undefined) return undefined;
    return {
      target: meta.t,
      retainMs: meta.r,
      policy: CachePolicy.fromObject(meta.p),
      body: bytes.subarray(4 + length),
      stream: meta.s === true,
      staleIfErrorMs: meta.e ?? 0,
    };
  } catch {
    return undefined;
  }
}
