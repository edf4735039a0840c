// What an allowed request holds until its answer is known: the tokens its policies took. Settled
// exactly once — with the tokens it really used (token policies charge or give back the difference
// to the store that took them; in-flight slots go back), or refunded whole when it never went out.
// A reservation nobody settles (a request that hangs) settles itself at its lease's end, keeping
// the estimate: no in-flight slot leaks, and the tokens are never counted twice.

import type { TakeRequest } from './bucket.js';
import type { CompiledPolicy } from './policy.js';

export interface Taken {
  readonly policy: CompiledPolicy;
  readonly request: TakeRequest;
  /** Where the tokens were taken: they go back to the same store. */
  readonly source: 'store' | 'local';
  /** in-flight: a maxInFlight slot; tokens: an LLM-token bucket or quota; requests: a request count. */
  readonly role: 'in-flight' | 'tokens' | 'requests';
}

export class Reservation {
  #done = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly taken: readonly Taken[],
    /** The token estimate reserved, when a policy counts tokens. */
    readonly estimate: number | undefined,
    leaseMs: number,
  ) {
    if (taken.some((t) => t.role === 'in-flight')) {
      this.#timer = setTimeout(() => this.settle(undefined), leaseMs);
      this.#timer.unref();
    }
  }

  /** True when the answer matters: a token policy settles from it, or an in-flight slot waits for its end. */
  get needsAnswer(): boolean {
    return this.estimate !== undefined || this.taken.some((t) => t.role === 'in-flight');
  }

  get settled(): boolean {
    return this.#done;
  }

  /** The request is over: `usedTokens` (undefined: unknown, keep the estimate) settles token policies. */
  settle(usedTokens: number | undefined): void {
    if (this.#done) return;
    this.#finish();
    for (const taken of this.taken) {
      if (taken.role === 'in-flight') adjust(taken, -taken.request.cost);
      else if (taken.role === 'tokens' && usedTokens !== undefined) adjust(taken, Math.max(0, usedTokens) - taken.request.cost);
    }
  }

  /** The request never reached a backend: everything goes back. */
  refund(): void {
    if (this.#done) return;
    this.#finish();
    Reservation.refundAll(this.taken);
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** Gives the tokens back to where they were taken (best effort: a failed refund only leaves the bucket a little emptier). */
  static refundAll(taken: readonly Taken[]): void {
    for (const t of taken) adjust(t, -t.request.cost);
  }
}

function adjust(taken: Taken, delta: number): void {
  try {
    taken.policy.store.adjust({ ...taken.request, maxWaitMs: 0 }, delta, taken.source);
  } catch {
    // best effort
  }
}
