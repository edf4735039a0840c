// Buckets in this process: exact for one gateway. Idle buckets (full again) are swept so the
// map does not grow with every client ever seen.

import { takeFromBucket, type BucketState, type BucketStore, type TakeRequest, type TakeResult } from './bucket.js';

export class MemoryBucketStore implements BucketStore {
  readonly #buckets = new Map<string, BucketState & { fullAt: number }>();
  readonly #clock: () => number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: { clock?: () => number; sweepEveryMs?: number } = {}) {
    this.#clock = options.clock ?? (() => performance.now());
    const every = options.sweepEveryMs ?? 30_000;
    if (every > 0) {
      this.#sweeper = setInterval(() => this.sweep(), every);
      this.#sweeper.unref();
    }
  }

  take(request: TakeRequest): TakeResult {
    const now = this.#clock();
    let state = this.#buckets.get(request.key);
    if (!state) {
      state = { tokens: request.capacity, at: now, fullAt: now };
      this.#buckets.set(request.key, state);
    }
    const result = takeFromBucket(state, now, request);
    state.fullAt = now + result.fullInMs;
    return result;
  }

  /** Drops buckets that are full by now: a fresh bucket would be identical. */
  sweep(): void {
    const now = this.#clock();
    for (const [key, state] of this.#buckets) if (state.fullAt <= now) this.#buckets.delete(key);
  }

  /** A read-only walk over the live buckets (the console's busiest keys); times are on `now()`'s clock. */
  entries(): IterableIterator<[string, Readonly<BucketState & { fullAt: number }>]> {
    return this.#buckets.entries();
  }

  now(): number {
    return this.#clock();
  }

  get size(): number {
    return this.#buckets.size;
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#buckets.clear();
  }
}
