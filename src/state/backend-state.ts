import type { BackendBreaker } from '../resilience/breaker.js';
import type { BackendQueue } from '../resilience/concurrency.js';
import type { HealthMonitor } from '../resilience/health-check.js';
import { BackendCapacity } from './backend-capacity.js';

// Live state of one backend. It lives in a registry keyed by a stable id (upstream name + URL),
// not in the config snapshot, so cooldowns and counters survive a config reload.

export interface CooldownRecord {
  until: number;
  source: string;
  value: string;
  setAt: number;
}

export class BackendState {
  readonly id: string;
  /** Epoch ms before which the backend gets no request (throttled). 0 = not cooling. */
  cooldownUntil = 0;
  lastCooldown: CooldownRecord | undefined;
  inFlight = 0;
  requests = 0;
  throttled = 0;
  errors = 0;
  // Resilience; undefined / Infinity while the upstream does not configure them.
  breaker: BackendBreaker | undefined;
  health: HealthMonitor | undefined;
  queue: BackendQueue | undefined;
  maxConcurrent = Infinity;
  /** Attempts in flight that are failure retries (for the retry budget). */
  retriesInFlight = 0;
  /** Weight scale of the opt-in lowWater steering (1 = full share). */
  share = 1;
  /** Retries this backend earned by answering, spent when it fails many requests at once (resilience/retry.ts). */
  retryTokens = 0;
  /**
   * What the backend can take before it throttles again, what it announced it has left (requests
   * and tokens) and its declared rpm/tpm: the one learner of backend capacity (backend-capacity.ts).
   */
  readonly capacity = new BackendCapacity();

  constructor(id: string) {
    this.id = id;
  }

  /** Requests waiting for a concurrency slot on this backend. */
  get queued(): number {
    return this.queue === undefined ? 0 : this.queue.size;
  }

  get healthy(): boolean {
    return this.health === undefined || this.health.healthy;
  }

  /** Breaker, health and concurrency allow a new request (cooldown is checked apart). */
  admits(): boolean {
    return (
      (this.health === undefined || this.health.healthy) &&
      (this.breaker === undefined || this.breaker.canPass()) &&
      this.inFlight + this.queued < this.maxConcurrent
    );
  }

  /** Like admits(), for a request leaving this backend's queue: the queue itself does not hold it back. */
  admitsWaiter(): boolean {
    return (
      (this.health === undefined || this.health.healthy) &&
      (this.breaker === undefined || this.breaker.canPass()) &&
      this.inFlight < this.maxConcurrent
    );
  }

  /** An attempt ended: free its slot and hand it to the oldest waiter. */
  releaseSlot(): void {
    this.inFlight--;
    if (this.queue !== undefined && this.queue.size > 0) this.queue.drain(this);
  }

  /** Stops timers (breaker window, health probes) and drops waiters. */
  shutdown(): void {
    this.breaker?.shutdown();
    this.health?.stop();
    this.queue?.clear();
    this.breaker = undefined;
    this.health = undefined;
    this.queue = undefined;
    this.maxConcurrent = Infinity;
  }

  isCooling(now: number): boolean {
    return this.cooldownUntil > now;
  }

  /** Extends the cooldown to `until`; never shortens it. Returns true when the end moved. */
  coolDownUntil(until: number, source: string, value: string, now: number): boolean {
    if (until <= this.cooldownUntil) return false;
    this.cooldownUntil = until;
    this.lastCooldown = { until, source, value, setAt: now };
    return true;
  }
}

/** Owns every BackendState; a new config snapshot looks its state up by id. */
export class BackendStateRegistry {
  readonly #states = new Map<string, BackendState>();

  get(id: string): BackendState {
    let state = this.#states.get(id);
    if (!state) {
      state = new BackendState(id);
      this.#states.set(id, state);
    }
    return state;
  }

  /** Drops the state of backends no longer in the config. */
  retain(ids: ReadonlySet<string>): void {
    for (const [id, state] of this.#states) {
      if (ids.has(id)) continue;
      state.shutdown();
      this.#states.delete(id);
    }
  }

  shutdown(): void {
    for (const state of this.#states.values()) state.shutdown();
  }

  values(): IterableIterator<BackendState> {
    return this.#states.values();
  }

  get size(): number {
    return this.#states.size;
  }
}

export function backendId(upstream: string, url: string): string {
  return `${upstream} ${url}`;
}
