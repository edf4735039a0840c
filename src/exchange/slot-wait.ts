// One request waiting in a backend's concurrency queue (every candidate is at its limit): it takes
// the next slot that frees there, or moves on to another backend, or — when the queue is full or
// maxWait passes — gets the route's fallback or 503 concurrency-limit.

import type { QueueEntry, QueueWaiter } from '../resilience/concurrency.js';
import type { CompiledBackend, CompiledUpstream } from '../snapshot/snapshot.js';
import type { ExchangeContext } from './backend-walk.js';
import { sendConcurrencyLimited } from './pool-answers.js';
import type { ResponseSink } from './sink.js';

/** What a wait needs of the exchange it belongs to. */
export interface SlotWaitOwner {
  readonly upstream: CompiledUpstream;
  readonly context: ExchangeContext;
  readonly sink: ResponseSink;
  readonly clientGone: boolean;
  readonly tried: number;
  pick(now: number): CompiledBackend | undefined;
  dispatchTo(backend: CompiledBackend, isRetry: boolean): void;
  noBackend(now: number): void;
  fallBack(): boolean;
}

export class SlotWait implements QueueWaiter {
  #backend: CompiledBackend | undefined;
  #entry: QueueEntry | undefined;

  constructor(private readonly owner: SlotWaitOwner) {}

  /** Waits in `backend`'s queue; a full queue is answered at once. */
  enqueue(backend: CompiledBackend): void {
    const { owner } = this;
    const entry = backend.state.queue?.add(this);
    if (entry === undefined) {
      owner.context.observer.concurrencyRejected(owner.upstream, backend, 'queue-full');
      if (!owner.fallBack()) sendConcurrencyLimited(owner.sink, owner.upstream, 'queue-full');
      return;
    }
    this.#backend = backend;
    this.#entry = entry;
  }

  /** The client went away (or the deadline passed): leave the queue. */
  cancel(): void {
    if (this.#entry !== undefined && this.#backend !== undefined) this.#backend.state.queue?.cancel(this.#entry);
    this.#entry = undefined;
    this.#backend = undefined;
  }

  /** QueueWaiter: a slot freed on the backend this request waits for. */
  wake(): boolean {
    const { owner } = this;
    const backend = this.#backend!;
    this.#backend = undefined;
    this.#entry = undefined;
    if (owner.clientGone) return false;
    const now = Date.now();
    if ((owner.tried & (1 << backend.index)) === 0 && !backend.state.isCooling(now) && backend.state.admitsWaiter()) {
      owner.dispatchTo(backend, false);
      return true;
    }
    const next = owner.pick(now);
    if (next) {
      owner.dispatchTo(next, false);
      return next === backend;
    }
    owner.noBackend(now);
    return false;
  }

  /** QueueWaiter: maxWait passed. */
  expire(): void {
    const { owner } = this;
    const backend = this.#backend;
    this.#backend = undefined;
    this.#entry = undefined;
    if (owner.clientGone) return;
    owner.context.observer.concurrencyRejected(owner.upstream, backend, 'wait-expired');
    if (!owner.fallBack()) sendConcurrencyLimited(owner.sink, owner.upstream, 'wait-expired');
  }
}
