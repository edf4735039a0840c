// What an idempotency store keeps per key: a short lease while the first request is in flight,
// then the stored answer for `ttl`. Both carry the fingerprint of the request body, so a reuse of
// the key with a different body is recognised.

import { createHash } from 'node:crypto';

export interface StoredAnswer {
  readonly status: number;
  /** Response headers as [name, value] pairs (lower-case names), without hop-by-hop ones. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

export type BeginResult =
  /** No record: this request holds the lease (`token`) and goes to the backend. */
  | { readonly kind: 'acquired'; readonly token: string }
  /** The first request with this key is still in flight. */
  | { readonly kind: 'in-flight'; readonly fingerprint: string; readonly leaseLeftMs: number }
  /** The first request completed: its answer. */
  | { readonly kind: 'done'; readonly fingerprint: string; readonly answer: StoredAnswer };

export interface IdempotencyStore {
  /** Takes the lease for `key` (for `leaseMs`), or says what holds the key already. */
  begin(key: string, fingerprint: string, leaseMs: number): Promise<BeginResult>;
  /** Stores the answer for `ttlMs` in place of the lease `token` (not when another request holds the key now). */
  complete(key: string, token: string, fingerprint: string, answer: StoredAnswer, ttlMs: number): Promise<void>;
  /** Gives the key up (the answer was not stored): the next request with it goes to the backend. */
  release(key: string, token: string): Promise<void>;
  close(): Promise<void>;
}

/** The store key of an idempotency key: scoped by route, method, path and scope, then hashed. */
export function scopedKey(route: string, method: string, path: string, scope: string, key: string): string {
  return createHash('sha256').update(`${route}\u0000${method}\u0000${path}\u0000${scope}\u0000${key}`).digest('base64url');
}

/** Fingerprint of a request body. */
export function fingerprint(body: Buffer | null): string {
  return createHash('sha256')
    .update(body ?? Buffer.alloc(0))
    .digest('base64url');
}

let counter = 0;
/** A lease token unique to this process and request. */
export function leaseToken(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${process.pid}.${Date.now().toString(36)}.${counter.toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
}
