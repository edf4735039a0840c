// The learner of backend capacity: how many requests a backend can take before it throttles
// again. One record per backend id (it lives on the backend's state, so it survives reloads),
// fed by what the request path sees — answers accepted since the backend was last ready, the
// count it had accepted when it throttled (its last window), and `x-ratelimit-remaining-*` /
// `x-ratelimit-limit-*` headers when the backend sends them. Read by hold-until-ready pacing
// and by steering before the 429 (exchange/steering.ts), which also feeds it the budgets a
// backend announces with their resets (requests and tokens, resilience/capacity-headers.ts) and
// counts declared rpm/tpm:
//   - announced budgets are counted down locally for every request sent since, so requests in
//     flight are not sent into a budget already spent; within one window the lower figure wins;
//   - `blockedUntil` says when the backend can take a request of a given token estimate: the
//     gateway treats it as cooling until then, without spending a request on its 429;
//   - `share` is the opt-in weight scale while the announced remaining is merely low (lowWater).
// Declared rpm/tpm: without Redis, N gateway processes each count alone and may send up to N×
// before the backend's own answers correct them. With Redis every send is also counted in a
// shared per-minute count, and each reply tells the process what all replicas sent: a process
// acts on the others' sends once the reply is in (usually before its next request), so the
// replicas together overshoot by about one request per process and minute.

import type { BudgetReading, CapacityReading } from '../resilience/capacity-headers.js';

/** Headers that state the requests left in the backend's current window (OpenAI, Azure, GitHub, …). */
const REMAINING = ['x-ratelimit-remaining-requests', 'x-ratelimit-remaining', 'ratelimit-remaining'] as const;
const LIMIT = ['x-ratelimit-limit-requests', 'x-ratelimit-limit', 'ratelimit-limit'] as const;

type Headers = Record<string, string | string[] | undefined>;

function readCount(headers: Headers, names: readonly string[]): number | undefined {
  for (const name of names) {
    const raw = headers[name];
    const text = Array.isArray(raw) ? raw[0] : raw;
    if (text === undefined) continue;
    const value = Number.parseInt(text, 10);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  return undefined;
}

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
  /** Answers accepted since the backend was last ready (since its last throttle). */
  acceptedInWindow = 0;
  /** Accepted in the window that ended with the last throttle: what it took then. undefined until learned. */
  lastWindow: number | undefined;
  /** Requests left in the current window, as the backend last said (undefined: not told). */
  remaining: number | undefined;
  /** Epoch ms the backend last said how many are left. */
  remainingAt = 0;
  /** The window's full size, as the backend last said. */
  limit: number | undefined;
  /** Called when the backend says its window is spent (remaining 0): peers may skip it too. */
  onSpent: (() => void) | undefined;

  /** A peer heard the backend say its window is spent: one more now would be refused here too. */
  spentFromPeer(now: number): void {
    this.remaining = 0;
    this.remainingAt = now;
  }

  /** An answer that is not a throttle; `headers` may state what is left. */
  accepted(headers?: Headers, now = Date.now()): void {
    this.acceptedInWindow++;
    if (headers !== undefined) this.#readHeaders(headers, now);
  }

  /**
   * True when the backend said, within the last `freshMs`, that it has no more room than the
   * requests already in flight on it take: one more now would be refused.
   */
  spent(inFlight: number, now: number, freshMs = 1_000): boolean {
    return this.remaining !== undefined && now - this.remainingAt < freshMs && this.remaining <= inFlight;
  }

  /** The backend throttled: its window is spent; what it accepted is what it can take. */
  throttled(headers?: Headers): void {
    this.lastWindow = Math.max(1, this.acceptedInWindow);
    this.acceptedInWindow = 0;
    this.remaining = undefined;
    if (headers !== undefined) {
      const limit = readCount(headers, LIMIT);
      if (limit !== undefined) this.limit = limit;
    }
  }

  /**
   * How many more requests the backend can take now, on top of `inFlight`: what it said is left,
   * else its last window (or stated limit) minus what it accepted since. undefined when unknown.
   */
  allowance(inFlight: number): number | undefined {
    if (this.remaining !== undefined) return Math.max(0, this.remaining - inFlight);
    const window = this.limit ?? this.lastWindow;
    if (window === undefined) return undefined;
    return Math.max(0, window - this.acceptedInWindow - inFlight);
  }

  // What the backend announced it has left (requests and tokens, with their reset), counted down
  // as requests go out; its declared rpm/tpm, counted per fixed minute (steering before the 429).
  requestBudget: Budget | undefined;
  tokenBudget: Budget | undefined;
  declared: Declared = { rpm: undefined, tpm: undefined };
  /** True once there is anything to steer by: an announced budget or a declared rpm/tpm. */
  get steers(): boolean {
    return (
      this.requestBudget !== undefined ||
      this.tokenBudget !== undefined ||
      this.declared.rpm !== undefined ||
      this.declared.tpm !== undefined
    );
  }

  /** With Redis: the declared capacity is counted for every replica, not per process. */
  shared: SharedCount | undefined;
  #windowStart = 0;
  #sentRequests = 0;
  #sentTokens = 0;

  /** An answer's announced budgets. `othersInFlight`: requests sent before this answer arrived, not yet answered. */
  observe(reading: CapacityReading, now: number, othersInFlight: number): void {
    if (reading.requests) this.requestBudget = learn(this.requestBudget, reading.requests, now, othersInFlight, 1);
    if (reading.tokens) this.tokenBudget = learn(this.tokenBudget, reading.tokens, now, 0, 0);
  }

  /** A request of `tokens` (estimated) goes to the backend now. */
  sent(tokens: number, now: number): void {
    if (this.requestBudget && (this.requestBudget.resetAt === 0 || now < this.requestBudget.resetAt)) this.requestBudget.remaining -= 1;
    if (this.tokenBudget && tokens > 0 && (this.tokenBudget.resetAt === 0 || now < this.tokenBudget.resetAt))
      this.tokenBudget.remaining -= tokens;
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
    const requests = this.requestBudget;
    if (requests && requests.resetAt > now && requests.remaining <= 0)
      return { until: requests.resetAt, source: 'x-ratelimit-remaining-requests', value: String(Math.max(0, requests.remaining)) };
    const budget = this.tokenBudget;
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
    for (const budget of [this.requestBudget, this.tokenBudget]) {
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
      requests: budget(this.requestBudget),
      tokens: budget(this.tokenBudget),
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

  #readHeaders(headers: Headers, now: number): void {
    const remaining = readCount(headers, REMAINING);
    if (remaining !== undefined) {
      // More left than before: a new window began.
      if (this.remaining !== undefined && remaining > this.remaining) this.acceptedInWindow = 1;
      const spentNow = remaining === 0 && this.remaining !== 0;
      this.remaining = remaining;
      this.remainingAt = now;
      if (spentNow) this.onSpent?.();
    }
    const limit = readCount(headers, LIMIT);
    if (limit !== undefined) this.limit = limit;
  }
}

/** The capacity record of the backend with this id, from any registry of backend states. */
export function capacityOf(states: { get(id: string): { readonly capacity: BackendCapacity } }, id: string): BackendCapacity {
  return states.get(id).capacity;
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
