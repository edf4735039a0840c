// Hold until ready: a bounded FIFO of requests waiting for a cooling backend of one upstream,
// each for at most `maxWait` (or its own deadline). Full → the caller answers at once. The
// queue only keeps order and time; when to release (and how many) is decided by the caller,
// which knows the pool and what each backend can take.

export interface HoldPolicy {
  readonly maxWait: number;
  readonly queue: number;
}

export interface HoldWaiter {
  /** Epoch ms when the request was first held (a re-held request keeps its first time). */
  readonly heldSince: number;
  /** Leave the queue and try the pool again. */
  releaseHold(): void;
  /** Waited its longest: answer at once (fallback or 429). */
  holdExpired(): void;
  /** Dropped from outside: the upstream left the config, or the gateway is shutting down. */
  evictHold(reason: 'removed' | 'shutdown'): void;
}

export interface HoldEntry {
  readonly waiter: HoldWaiter;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

export class HoldQueue {
  #entries: HoldEntry[] = [];
  #head = 0;
  size = 0;
  #wake: { timer: NodeJS.Timeout; at: number } | undefined;
  /** Called when the wake timer fires (set by whoever paces releases). */
  onWake: () => void = () => {};

  constructor(public policy: HoldPolicy) {}

  /** Holds `waiter` until `expiresAt` (epoch ms); undefined when the queue is full. */
  add(waiter: HoldWaiter, expiresAt: number, now: number): HoldEntry | undefined {
    if (this.size >= this.policy.queue) return undefined;
    if (this.#entries.length - this.#head > 2 * this.policy.queue + 16) {
      this.#entries = this.#entries.slice(this.#head).filter((item) => !item.done);
      this.#head = 0;
    }
    const entry: HoldEntry = { waiter, timer: undefined, done: false };
    entry.timer = setTimeout(() => this.#finish(entry) && waiter.holdExpired(), Math.max(0, expiresAt - now));
    this.#entries.push(entry);
    this.size++;
    return entry;
  }

  /** The waiter went away (client closed). */
  cancel(entry: HoldEntry): void {
    this.#finish(entry);
  }

  /** Releases the oldest waiter; false when none waits. */
  releaseOne(): boolean {
    for (;;) {
      if (this.#head >= this.#entries.length) return false;
      const entry = this.#entries[this.#head]!;
      this.#entries[this.#head++] = undefined as unknown as HoldEntry;
      if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
        this.#entries = this.#entries.slice(this.#head);
        this.#head = 0;
      }
      if (this.#finish(entry)) {
        entry.waiter.releaseHold();
        return true;
      }
    }
  }

  /** Wake the pacer at `at` (epoch ms), unless it is woken sooner already. */
  wakeAt(at: number, now: number): void {
    if (this.#wake !== undefined && this.#wake.at <= at) return;
    if (this.#wake !== undefined) clearTimeout(this.#wake.timer);
    this.#wake = {
      at,
      timer: setTimeout(
        () => {
          this.#wake = undefined;
          this.onWake();
        },
        Math.max(0, at - now),
      ),
    };
  }

  /** Drops every waiter with `reason` (upstream removed, shutdown). */
  evictAll(reason: 'removed' | 'shutdown'): void {
    if (this.#wake !== undefined) clearTimeout(this.#wake.timer);
    this.#wake = undefined;
    const entries = this.#entries.slice(this.#head);
    this.#entries = [];
    this.#head = 0;
    for (const entry of entries) if (entry !== undefined && this.#finish(entry)) entry.waiter.evictHold(reason);
  }

  #finish(entry: HoldEntry): boolean {
    if (entry.done) return false;
    entry.done = true;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    this.size--;
    return true;
  }
}
