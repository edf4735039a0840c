// Concurrency limit per backend: at most `perBackend` requests in flight, then a bounded FIFO of
// waiting requests, each waiting at most `maxWait`. A full queue or an expired wait is answered
// 503 by the caller — there is never an unbounded backlog. A small hand-written queue instead of
// bottleneck: see docs/decisions/007-own-concurrency-limiter.md.

import type { ConcurrencyPolicy } from './policy.js';

export interface QueueWaiter {
  /** A slot on this backend is free. Returns true when the waiter took it. */
  wake(): boolean;
  /** maxWait passed without a slot. */
  expire(): void;
}

interface Entry {
  waiter: QueueWaiter;
  timer: NodeJS.Timeout;
  done: boolean;
}

export interface SlotState {
  readonly inFlight: number;
  readonly maxConcurrent: number;
}

export class BackendQueue {
  #entries: Entry[] = [];
  #head = 0;
  /** Live (not woken, expired or cancelled) entries. */
  size = 0;

  constructor(public policy: ConcurrencyPolicy) {}

  /** Adds a waiter; returns undefined when the queue is full. */
  add(waiter: QueueWaiter): Entry | undefined {
    if (this.size >= this.policy.queue) return undefined;
    // Expired and cancelled entries stay in the array until shifted; keep it bounded.
    if (this.#entries.length - this.#head > 2 * this.policy.queue + 16) {
      this.#entries = this.#entries.slice(this.#head).filter((item) => !item.done);
      this.#head = 0;
    }
    const entry: Entry = { waiter, done: false, timer: setTimeout(() => this.#expire(entry), this.policy.maxWait) };
    this.#entries.push(entry);
    this.size++;
    return entry;
  }

  /** The waiter went away (client closed): forget it. */
  cancel(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.timer);
    this.size--;
  }

  /** Slots freed: hand them to the oldest waiters, in order, until none is free or none waits. */
  drain(slots: SlotState): void {
    while (this.size > 0 && slots.inFlight < slots.maxConcurrent) {
      const entry = this.#shift();
      if (!entry) break;
      entry.done = true;
      clearTimeout(entry.timer);
      this.size--;
      entry.waiter.wake();
    }
  }

  /** Drops every waiter (shutdown); each is told its wait expired. */
  clear(): void {
    for (let entry = this.#shift(); entry; entry = this.#shift()) this.#expire(entry);
  }

  #shift(): Entry | undefined {
    while (this.#head < this.#entries.length) {
      const entry = this.#entries[this.#head]!;
      this.#entries[this.#head++] = undefined as unknown as Entry;
      if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
        this.#entries = this.#entries.slice(this.#head);
        this.#head = 0;
      }
      if (!entry.done) return entry;
    }
    return undefined;
  }

  #expire(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.timer);
    this.size--;
    entry.waiter.expire();
  }
}

export type QueueEntry = Entry;
