// The recent decision events, for GET /admin/events: a fixed-size ring, oldest overwritten first,
// and a live feed of new ones for the console's event stream.

export interface DecisionEvent {
  /** ISO timestamp */
  time: string;
  /** e.g. backend.cooldown, backend.recovered, backend.breaker, config.reload */
  event: string;
  msg: string;
  [field: string]: unknown;
}

export class EventBuffer {
  readonly #items: Array<DecisionEvent | undefined>;
  #next = 0;
  #count = 0;
  readonly #listeners = new Set<(event: DecisionEvent) => void>();

  constructor(readonly capacity: number) {
    this.#items = new Array<DecisionEvent | undefined>(capacity);
  }

  push(event: DecisionEvent): void {
    for (const listener of this.#listeners) listener(event);
    if (this.capacity === 0) return;
    this.#items[this.#next] = event;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#count < this.capacity) this.#count++;
  }

  /** Calls `listener` with every event pushed from now on (the console's live stream); returns the unsubscribe. */
  subscribe(listener: (event: DecisionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Oldest first; at most `limit` (the newest ones). */
  list(limit = this.capacity): DecisionEvent[] {
    const take = Math.max(0, Math.min(limit, this.#count));
    const out: DecisionEvent[] = [];
    for (let i = this.#count - take; i < this.#count; i++) {
      out.push(this.#items[(this.#next - this.#count + i + this.capacity) % this.capacity]!);
    }
    return out;
  }

  get size(): number {
    return this.#count;
  }
}
