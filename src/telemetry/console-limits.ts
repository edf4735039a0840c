// The console's rate-limit panel: each policy's store and its decision and refusal rates, and the
// busiest in-memory buckets, their clients shown as an HMAC under a key that never leaves the process.

import { createHmac, randomBytes } from 'node:crypto';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { LimiterTally } from './console-tap.js';
import type { ConsoleLimitView } from './console-view.js';

/** The in-memory bucket store, read-only (ratelimit/memory-store.ts). */
export interface BucketLister {
  /** Live buckets: hashed id, policy, when full again (the client key itself is never kept). */
  entries(): Iterable<{ readonly id: string; readonly policy: string; readonly fullAt: number }>;
  now(): number;
}

/** A per-second rate of a limiter tally over the sampler's recent samples (null without two samples). */
export type LimiterRate = (pick: (sample: { limiter: Map<string, LimiterTally> }) => number | undefined) => number | null;

const BUSIEST = 5;
/** Bucket scan bound per sample: a million idle keys must not stall the event loop. */
const SCAN_LIMIT = 200_000;

export class ConsoleLimits {
  /** Client keys are shown as an HMAC under a key that never leaves the process. */
  readonly #salt = randomBytes(16);

  constructor(private readonly buckets: BucketLister | undefined) {}

  view(snapshot: Snapshot, rate: LimiterRate): ConsoleLimitView {
    const { config } = snapshot;
    const policies = Object.entries(config.rateLimits).map(([name, policy]) => ({
      name,
      store: (config.redis !== undefined && policy.store !== 'memory' ? 'redis' : 'memory') as 'memory' | 'redis',
      refusedPerSec: rate((sample) => sample.limiter.get(name)?.refused),
      decisionsPerSec: rate((sample) => sample.limiter.get(name)?.decided),
    }));
    return { policies, busiest: policies.some((p) => p.store === 'memory') ? this.#busiest() : [] };
  }

  #busiest(): ConsoleLimitView['busiest'] {
    const { buckets } = this;
    if (!buckets) return [];
    const now = buckets.now();
    const top: Array<{ id: string; policy: string; fullIn: number }> = [];
    let scanned = 0;
    for (const bucket of buckets.entries()) {
      if (++scanned > SCAN_LIMIT) break;
      // Ranked by when the bucket is full again: the most drained first, then the most recent.
      const fullIn = bucket.fullAt - now;
      if (top.length === BUSIEST && fullIn <= top[BUSIEST - 1]!.fullIn) continue;
      top.push({ id: bucket.id, policy: bucket.policy, fullIn });
      top.sort((a, b) => b.fullIn - a.fullIn);
      if (top.length > BUSIEST) top.pop();
    }
    return top.map(({ id, policy, fullIn }) => {
      const client = createHmac('sha256', this.#salt).update(id).digest('hex').slice(0, 12);
      return { policy, client, fullInSec: Math.max(0, Math.round(fullIn / 100) / 10) };
    });
  }
}
