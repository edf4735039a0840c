// Hold queues by upstream name: held requests outlive a reload when their upstream does (by
// name); an upstream that left the config has its held requests answered 503.

import { HoldQueue, type HoldPolicy } from '../resilience/hold.js';

export class HoldRegistry {
  readonly #queues = new Map<string, HoldQueue>();

  /** The queue of upstream `name`, created or given the new policy. */
  get(name: string, policy: HoldPolicy): HoldQueue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new HoldQueue(policy);
      this.#queues.set(name, queue);
    } else queue.policy = policy;
    return queue;
  }

  /** Upstreams no longer holding (removed, or hold switched off): their waiters get 503. */
  retain(names: ReadonlySet<string>): void {
    for (const [name, queue] of this.#queues) {
      if (names.has(name)) continue;
      this.#queues.delete(name);
      queue.evictAll('removed');
    }
  }

  /** Shutdown: every held request is answered 503. */
  evictAll(): void {
    for (const queue of this.#queues.values()) queue.evictAll('shutdown');
  }

  /** Requests held now, per upstream. */
  sizes(): Map<string, number> {
    return new Map([...this.#queues].map(([name, queue]) => [name, queue.size]));
  }
}
