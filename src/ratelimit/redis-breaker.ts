// A circuit breaker around Redis. After `failures` consecutive failed commands it opens: for
// `cooldownMs` no command goes to Redis (requests use the onRedisError fallback at no cost).
// Then one probe is let through: success closes it, failure opens it again. The client becoming
// ready again (reconnected) closes it at once: no waiting for a lucky probe.

export type RedisBreakerState = 'closed' | 'open' | 'half-open';

export interface RedisBreakerEvents {
  opened(reason: string): void;
  closed(): void;
}

export class RedisBreaker {
  state: RedisBreakerState = 'closed';
  #failures = 0;
  #openUntil = 0;
  #probing = false;

  constructor(
    readonly threshold: number,
    readonly cooldownMs: number,
    readonly events: RedisBreakerEvents,
    readonly clock: () => number = Date.now,
  ) {}

  /** May this check go to Redis? (At most one probe at a time while half-open.) */
  allow(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (this.clock() < this.#openUntil) return false;
      this.state = 'half-open';
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** Milliseconds until the next probe (for Retry-After while Redis is unavailable). */
  retryInMs(): number {
    return this.state === 'open' ? Math.max(0, this.#openUntil - this.clock()) : 0;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.events.closed();
    }
  }

  /** Redis is connected and ready again: back to Redis now, with a fresh failure count. */
  reconnected(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.events.closed();
    }
  }

  failed(reason: string): void {
    this.#failures++;
    this.#probing = false;
    if (this.state === 'half-open' || (this.state === 'closed' && this.#failures >= this.threshold)) {
      const wasClosed = this.state === 'closed';
      this.state = 'open';
      this.#openUntil = this.clock() + this.cooldownMs;
      if (wasClosed) this.events.opened(reason);
    }
  }
}
