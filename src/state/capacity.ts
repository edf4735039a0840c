// One learner of a backend's capacity, kept with the backend's live state (keyed by backend id,
// so it survives reloads). It learns from two sources:
//   - what the backend announces on each answer (x-ratelimit-remaining-requests|tokens and their
//     resets, the IETF RateLimit field: resilience/capacity-headers.ts), counted down locally for
//     every request sent since, so requests in flight are not sent into a budget already spent;
//   - what the config declares (rpm / tpm), counted per minute (fixed windows) as requests go out.
// `blockedUntil` says when the backend can take a request of a given token estimate: the gateway
// treats the backend as cooling until then, without spending a request on its 429. `share` is
// the opt-in weight scale while the announced remaining is merely low (lowWater).
//
// Declared rpm/tpm: without Redis, N gateway processes each count alone and may send up to N×
// before the backend's own answers (its remaining headers, or its 429) correct them. With Redis
// every send is also counted in a shared per-minute count, and each reply tells the process what
// all replicas sent: a process acts on the others' sends from its next request on, so the
// replicas together overshoot by at most one request per process and minute.

import type { BudgetReading, CapacityReading } from '../resilience/capacity-headers.js';

interface Budget {
  /** What the backend said is left, minus what was sent since. */
  remaining: number;
  /** Epoch ms when the backend said the budget is whole again (0 = not said). */
  resetAt: number;
  limit: number | undefined;
}

const MINUTE = 60_000;

export interface Declared {
  readonly rpm: number | undefined;
  readonly tpm: number | undefined;
}

/**
 * Counts a send into a count shared by every replica (Redis) for the minute `window` (its start,
 * epoch ms); resolves with what every replica sent to this backend in that minute, or undefined
 * when the shared store cannot say.
 */
export type SharedCount = (
  window: number,
  endsInMs: number,
  requests: number,
  tokens: number,
) => Promise<{ requests: number | undefined; tokens: number | undefined } | undefined>;

export class BackendCapacity {
  requests: Budget | undefined;
  tokens: Budget | undefined;
  declared: Declared = { rpm: undefined, tpm: undefined };
  /** With Redis: the declared capacity is counted for every replica, not per process. */
  shared: SharedCount | undefined;
  #windowStart = 0;
  #sentRequests = 0;
  #sentTokens = 0;

  /** An answer's announced budgets. `othersInFlight`: requests sent before this answer arrived, not yet answered. */
  observe(reading: CapacityReading, now: number, othersInFlight: number): void {
    if (reading.requests) this.requests = learn(this.requests, reading.requests, now, othersInFlight, 1);
    if (reading.tokens) this.tokens = learn(this.tokens, reading.tokens, now, 0, 0);
  }

  /** A request of `tokens` (estimated) goes to the backend now. */
  sent(tokens: number, now: number): void {
    if (this.requests && (this.requests.resetAt === 0 || now < this.requests.resetAt)) this.requests.remaining -= 1;
    if (this.tokens && tokens > 0 && (this.tokens.resetAt === 0 || now < this.tokens.resetAt)) this.tokens.remaining -= tokens;
    if (this.declared.rpm !== undefined || this.declared.tpm !== undefined) {
      this.#roll(now);
      this.#sentRequests++;
      this.#sentTokens += tokens;
      if (this.shared) this.#share(this.#windowStart, this.#windowStart + MINUTE - now, tokens);
    }
  }

  /** Adds this send to the replicas' shared count; what the others sent is known on its reply. */
  #share(window: number, endsInMs: number, tokens: number): void {
    this.shared!(window, endsInMs, 1, tokens).then(
      (count) => {
        if (!count || window !== this.#windowStart) return;
        if (count.requests !== undefined) this.#sentRequests = Math.max(this.#sentRequests, count.requests);
        if (count.tokens !== undefined) this.#sentTokens = Math.max(this.#sentTokens, count.tokens);
      },
      () => undefined,
    );
  }

  /**
   * Epoch ms before which a request of `tokens` (estimated) would be refused, by the backend's own
   * word or by its declared capacity; 0 when it can be sent now. `source` names the reason.
   */
  blockedUntil(now: number, tokens: number): { until: number; source: string; value: string } | undefined {
    const requests = this.requests;
    if (requests && requests.resetAt > now && requests.remaining <= 0)
      return { until: requests.resetAt, source: 'x-ratelimit-remaining-requests', value: String(Math.max(0, requests.remaining)) };
    const budget = this.tokens;
    if (budget && budget.resetAt > now && tokens > 0 && budget.remaining < tokens)
      return { until: budget.resetAt, source: 'x-ratelimit-remaining-tokens', value: String(Math.max(0, Math.floor(budget.remaining))) };
    const { rpm, tpm } = this.declared;
    if (rpm !== undefined || tpm !== undefined) {
      this.#roll(now);
      const end = this.#windowStart + MINUTE;
      if (rpm !== undefined && this.#sentRequests >= rpm) return { until: end, source: 'rpm', value: String(rpm) };
      if (tpm !== undefined && tokens > 0 && this.#sentTokens + tokens > tpm && this.#sentTokens > 0)
        return { until: end, source: 'tpm', value: String(tpm) };
    }
    return undefined;
  }

  /**
   * The weight scale while the announced remaining is below `lowWater` × limit: remaining /
   * (lowWater × limit), at least 5%; 1 otherwise (and without a known limit).
   */
  share(now: number, lowWater: number): number {
    let share = 1;
    for (const budget of [this.requests, this.tokens]) {
      if (!budget || budget.limit === undefined || budget.limit <= 0 || budget.resetAt <= now) continue;
      const floor = lowWater * budget.limit;
      if (floor > 0 && budget.remaining < floor) share = Math.min(share, Math.max(0.05, budget.remaining / floor));
    }
    return share;
  }

  /** What the learner knows now, for the admin view (budgets whose window ended are left out). */
  view(now: number): {
    requests: { remaining: number; limit: number | null; resetInMs: number } | null;
    tokens: { remaining: number; limit: number | null; resetInMs: number } | null;
    declared: { rpm: number | null; tpm: number | null; sentThisMinute: { requests: number; tokens: number } } | null;
  } {
    const budget = (b: Budget | undefined) =>
      b && b.resetAt > now ? { remaining: Math.max(0, Math.floor(b.remaining)), limit: b.limit ?? null, resetInMs: b.resetAt - now } : null;
    const { rpm, tpm } = this.declared;
    if (rpm !== undefined || tpm !== undefined) this.#roll(now);
    return {
      requests: budget(this.requests),
      tokens: budget(this.tokens),
      declared:
        rpm !== undefined || tpm !== undefined
          ? { rpm: rpm ?? null, tpm: tpm ?? null, sentThisMinute: { requests: this.#sentRequests, tokens: this.#sentTokens } }
          : null,
    };
  }

  #roll(now: number): void {
    const start = now - (now % MINUTE);
    if (start !== this.#windowStart) {
      this.#windowStart = start;
      this.#sentRequests = 0;
      this.#sentTokens = 0;
    }
  }
}

/**
 * The budget after an answer: the announced remaining, less what went out after it (counted by
 * `othersInFlight` for requests), never more than the local count of the same window.
 */
function learn(known: Budget | undefined, reading: BudgetReading, now: number, othersInFlight: number, perRequest: number): Budget {
  const resetAt = reading.resetMs === undefined ? 0 : now + reading.resetMs;
  const announced = reading.remaining - othersInFlight * perRequest;
  // Within the same window the lower count wins: a late answer carries an older, higher figure.
  // (The same window's reset, computed from each answer, differs only by the answers' latency.)
  const sameWindow = known !== undefined && known.resetAt > now && Math.abs(known.resetAt - resetAt) < 100;
  const remaining = sameWindow ? Math.min(known.remaining, announced) : announced;
  return { remaining, resetAt, limit: reading.limit ?? known?.limit };
}
