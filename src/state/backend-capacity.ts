// The learner of backend capacity: how many requests a backend can take before it throttles
// again. One record per backend id (it lives on the backend's state, so it survives reloads),
// fed by what the request path sees — answers accepted since the backend was last ready, the
// count it had accepted when it throttled (its last window), and `x-ratelimit-remaining-*` /
// `x-ratelimit-limit-*` headers when the backend sends them. Read by hold-until-ready pacing;
// meant to be read by any steering that needs "how much can this backend take now".

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
