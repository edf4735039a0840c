// In-memory client buckets shared by the worker processes of one host: the cluster primary
// holds the buckets (one MemoryBucketStore, so `capacity: 100` admits 100 across all workers),
// and each worker sends the checks of one event-loop turn in one IPC message. Should the
// primary not answer within a second (it never should on one host), the check falls back to a
// bucket in this worker, as `onRedisError: local` does for Redis.

import type { TakeRequest, TakeResult } from '../ratelimit/bucket.js';
import { adjustment, type PolicyStore, type StoreOutcome } from '../ratelimit/guarded-store.js';
import type { MemoryBucketStore } from '../ratelimit/memory-store.js';
import type { WorkerChannel } from './worker-channel.js';

const PRIMARY_WAIT_MS = 1_000;

interface Waiting {
  request: TakeRequest;
  resolve(outcome: StoreOutcome): void;
}

export class IpcBucketStore implements PolicyStore {
  #batch: Waiting[] | undefined;
  /** Round trips to the primary and checks sent (the batching ratio, for the bench). */
  readonly stats = { roundTrips: 0, checks: 0, fallbacks: 0 };

  constructor(
    private readonly channel: WorkerChannel,
    private readonly local: MemoryBucketStore,
  ) {}

  take(request: TakeRequest): Promise<StoreOutcome> {
    return new Promise((resolve) => {
      if (!this.#batch) {
        this.#batch = [];
        setImmediate(() => this.#flush());
      }
      this.#batch.push({ request, resolve });
    });
  }

  keyFor(policy: string, identity: string): string {
    return `${policy}\u0000${identity}`;
  }

  refund(request: TakeRequest, source: 'store' | 'local'): void {
    this.adjust(request, -request.cost, source);
  }

  /** Settles a reservation on the store that took it: the primary's bucket, or this worker's. */
  adjust(request: TakeRequest, delta: number, source: 'store' | 'local'): void {
    if (delta === 0) return;
    const change = adjustment(request, delta);
    if (source === 'local') this.local.take(change);
    else void this.take(change);
  }

  #flush(): void {
    const batch = this.#batch ?? [];
    this.#batch = undefined;
    this.stats.roundTrips++;
    this.stats.checks += batch.length;
    this.channel.request<TakeResult[]>('take', { requests: batch.map((w) => w.request) }, PRIMARY_WAIT_MS).then(
      (results) => {
        batch.forEach((waiting, i) => {
          const r = results[i];
          if (r) waiting.resolve({ ...r, source: 'store' });
          else waiting.resolve(this.#local(waiting.request));
        });
      },
      () => {
        for (const waiting of batch) waiting.resolve(this.#local(waiting.request));
      },
    );
  }

  #local(request: TakeRequest): StoreOutcome {
    this.stats.fallbacks++;
    const r = this.local.take(request);
    return { allowed: r.allowed, remaining: r.remaining, waitMs: r.waitMs, fullInMs: r.fullInMs, source: 'local' };
  }
}
