// Buckets in this process: exact for one gateway. Memory is bounded whatever clients send:
// - identities are hashed (SHA-256, 128 bits kept), so an 8 KB API key costs what a 3-byte one
//   does, and raw keys never sit in memory (the Redis store hashes the same way);
// - bucket state lives in typed arrays indexed by slot, so a bucket is a few dozen bytes;
// - buckets that are full again are swept (a fresh bucket would be identical), and at most
//   `maxBuckets` exist: past the cap the fullest buckets are evicted first — forgetting a bucket
//   refills it, and the fullest ones lose their clients the fewest tokens.

import { hash } from 'node:crypto';
import { takeFromBucket, type BucketState, type BucketStore, type TakeRequest, type TakeResult } from './bucket.js';
import { kthSmallest } from './select-kth.js';

export const DEFAULT_MAX_BUCKETS = 1_000_000;

export interface MemoryStoreOptions {
  clock?: () => number;
  sweepEveryMs?: number;
  maxBuckets?: number;
  /** Called after buckets were evicted to stay under the cap (not for the sweep of full ones). */
  onEvict?: (count: number) => void;
}

/**
 * The key a bucket is stored under: 128 bits of SHA-256 as a flat 16-character one-byte string
 * (32 bytes of heap). Decoding from the buffer makes a fresh string; slicing a hex or base64
 * digest would keep the whole digest string alive behind a sliced string, three times the size.
 */
export function memoryKey(key: string): string {
  return hash('sha256', key, 'buffer').toString('latin1', 0, 16);
}

export class MemoryBucketStore implements BucketStore {
  readonly #slots = new Map<string, number>();
  #keys: Array<string | undefined> = [];
  /** The policy part of each bucket's key (before its first NUL), for the console's busiest keys. */
  #policies: Array<string | undefined> = [];
  /** One string per policy name, shared by its buckets (a slice per bucket would cost ~32 MB per million). */
  readonly #policyNames = new Map<string, string>();
  #tokens = new Float64Array(0);
  #at = new Float64Array(0);
  /** Store clock at which the bucket is full again. */
  #fullAt = new Float64Array(0);
  /** Milliseconds the bucket takes to refill from empty (capacity / refill rate). */
  #fillMs = new Float64Array(0);
  #free: number[] = [];
  #maxBuckets: number;
  #evicted = 0;
  readonly #clock: () => number;
  readonly #state: BucketState = { tokens: 0, at: 0 };
  #sweeper: NodeJS.Timeout | undefined;
  onEvict: ((count: number) => void) | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? (() => performance.now());
    this.#maxBuckets = Math.max(1, options.maxBuckets ?? DEFAULT_MAX_BUCKETS);
    this.onEvict = options.onEvict;
    const every = options.sweepEveryMs ?? 30_000;
    if (every > 0) {
      this.#sweeper = setInterval(() => this.sweep(), every);
      this.#sweeper.unref();
    }
  }

  /** The cap on buckets; lowering it below the current count evicts at the next new bucket. */
  get maxBuckets(): number {
    return this.#maxBuckets;
  }
  set maxBuckets(value: number) {
    this.#maxBuckets = Math.max(1, Math.floor(value));
  }

  take(request: TakeRequest): TakeResult {
    const now = this.#clock();
    const id = memoryKey(request.key);
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      slot = this.#allocate(id, now, request.key);
      this.#tokens[slot] = request.capacity;
      this.#at[slot] = now;
    }
    const state = this.#state;
    state.tokens = this.#tokens[slot]!;
    state.at = this.#at[slot]!;
    const result = takeFromBucket(state, now, request);
    this.#tokens[slot] = state.tokens;
    this.#at[slot] = state.at;
    this.#fullAt[slot] = now + result.fullInMs;
    this.#fillMs[slot] = request.windowMs ? request.windowMs : request.capacity / request.refillPerMs;
    return result;
  }

  /** Drops buckets that are full by now: a fresh bucket would be identical. */
  sweep(): void {
    const now = this.#clock();
    for (const [id, slot] of this.#slots) if (this.#fullAt[slot]! <= now) this.#release(id, slot);
  }

  /**
   * A read-only walk over the live buckets (the console's busiest keys): the bucket's hashed id,
   * its policy, and when it is full again on `now()`'s clock. Client keys are not kept.
   */
  *entries(): IterableIterator<{ id: string; policy: string; fullAt: number }> {
    for (const [id, slot] of this.#slots) yield { id, policy: this.#policies[slot] ?? '', fullAt: this.#fullAt[slot]! };
  }

  now(): number {
    return this.#clock();
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Buckets evicted to stay under the cap since the store was made. */
  get evictions(): number {
    return this.#evicted;
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#slots.clear();
    this.#keys = [];
    this.#policies = [];
    this.#free = [];
    this.#tokens = this.#at = this.#fullAt = this.#fillMs = new Float64Array(0);
  }

  #allocate(id: string, now: number, key: string): number {
    if (this.#slots.size >= this.#maxBuckets) this.#evict(now);
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#keys.length;
      if (slot >= this.#tokens.length) this.#grow();
      this.#keys.push(undefined);
      this.#policies.push(undefined);
    }
    this.#keys[slot] = id;
    const cut = key.indexOf('\u0000');
    const policy = cut < 0 ? '' : key.slice(0, cut);
    let name = this.#policyNames.get(policy);
    if (name === undefined) this.#policyNames.set(policy, (name = policy));
    this.#policies[slot] = name;
    this.#slots.set(id, slot);
    return slot;
  }

  #release(id: string, slot: number): void {
    this.#slots.delete(id);
    this.#keys[slot] = undefined;
    this.#policies[slot] = undefined;
    this.#free.push(slot);
  }

  #grow(): void {
    const length = Math.min(Math.max(1024, this.#tokens.length * 2), Math.max(this.#maxBuckets, this.#tokens.length + 1));
    const grown = (old: Float64Array) => {
      const next = new Float64Array(length);
      next.set(old);
      return next;
    };
    this.#tokens = grown(this.#tokens);
    this.#at = grown(this.#at);
    this.#fullAt = grown(this.#fullAt);
    this.#fillMs = grown(this.#fillMs);
  }

  /**
   * Makes room under the cap: buckets already full go first, then the fullest (smallest share of
   * their capacity missing). 1% of the cap goes at once, so the O(n) pass is paid once per many
   * new clients instead of once per new client.
   */
  #evict(now: number): void {
    const target = this.#slots.size - this.#maxBuckets + Math.max(1, Math.ceil(this.#maxBuckets / 100));
    const slots = new Int32Array(this.#slots.size);
    const emptiness = new Float64Array(this.#slots.size);
    let n = 0;
    for (const slot of this.#slots.values()) {
      slots[n] = slot;
      emptiness[n] = Math.max(0, (this.#fullAt[slot]! - now) / this.#fillMs[slot]!);
      n++;
    }
    const threshold = kthSmallest(emptiness.slice(), Math.min(target, n) - 1);
    let freed = 0;
    let evicted = 0;
    const free = (i: number, e: number) => {
      this.#release(this.#keys[slots[i]!]!, slots[i]!);
      freed++;
      if (e > 0) evicted++;
    };
    // Everything strictly below the threshold goes, then ties until the target is met; full
    // buckets (emptiness 0) always go, since forgetting them changes nothing.
    for (let i = 0; i < n; i++) {
      const e = emptiness[i]!;
      if (e < threshold || e === 0) free(i, e);
    }
    for (let i = 0; i < n && freed < target; i++) {
      const e = emptiness[i]!;
      if (e === threshold && e > 0) free(i, e);
    }
    if (evicted > 0) {
      this.#evicted += evicted;
      this.onEvict?.(evicted);
    }
  }
}
