import type { BackendBreaker } from '../resilience/breaker.js';
import type { BackendQueue } from '../resilience/concurrency.js';
import type { HealthMonitor } from '../resilience/health-check.js';
import { createHash } from 'node:crypto';
import { BackendCapacity } from './backend-capacity.js';

// Live state of one backend. It lives in a registry keyed by a stable id (upstream name + URL),
// not in the config snapshot, so cooldowns and counters survive a config reload.

export interface CooldownRecord {
  until: number;
  source: string;
  value: string;
  setAt: number;
}

/** What an operator set on a backend at run time: active, drain (no new requests, health checks go on) or disable (no requests, no probes). */
export type AdminMode = 'active' | 'drain' | 'disable';

/**
 * What one gateway learns about a backend that its peers (other replicas, other workers) should
 * know at once. The state calls it for changes learnt locally; changes applied from a peer are
 * not reported again (no echo between peers).
 */
export interface BackendStateListener {
  cooldown(state: BackendState, remainingMs: number, source: string, value: string): void;
  breakerOpened(state: BackendState, remainingMs: number): void;
  probed(state: BackendState, passed: boolean, error: string | undefined): void;
  modeChanged(state: BackendState, mode: AdminMode): void;
  /** The backend said its window is spent (`x-ratelimit-remaining-*: 0`). */
  capacitySpent(state: BackendState): void;
}

/** Decides whether this gateway runs a backend's health probe now (a peer may hold the lease). */
export type ProbeGate = (state: BackendState, intervalMs: number) => boolean | Promise<boolean>;

export class BackendState {
  readonly id: string;
  /** A short, URL-free name of the backend for peers (Redis keys, messages). */
  readonly sharedKey: string;
  /** Set by the registry: where locally learnt changes go. */
  listener: BackendStateListener | undefined;
  /** Longest cooldown this gateway's config accepts (throttle.maxCooldown); a peer's cooldown is clamped to it. */
  maxCooldownMs = Infinity;
  /** Set by an operator (admin API); survives reloads like the rest of this state. */
  adminMode: AdminMode = 'active';
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
    this.sharedKey = createHash('sha256').update(id).digest('base64url').slice(0, 22);
    this.capacity.onSpent = () => this.listener?.capacitySpent(this);
  }

  /** Not drained or disabled by an operator. */
  get enabled(): boolean {
    return this.adminMode === 'active';
  }

  /** Sets the operator's mode; returns whether it changed. `notify: false` for a change a peer made. */
  setMode(mode: AdminMode, notify = true): boolean {
    if (mode === this.adminMode) return false;
    this.adminMode = mode;
    if (notify) this.listener?.modeChanged(this, mode);
    return true;
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
      this.adminMode === 'active' &&
      (this.health === undefined || this.health.healthy) &&
      (this.breaker === undefined || this.breaker.canPass()) &&
      this.inFlight + this.queued < this.maxConcurrent
    );
  }

  /** Like admits(), for a request leaving this backend's queue: the queue itself does not hold it back. */
  admitsWaiter(): boolean {
    return (
      this.adminMode === 'active' &&
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
    this.listener?.cooldown(this, until - now, source, value);
    return true;
  }

  /**
   * A cooldown a peer learnt, as a remaining duration (clock-skew free: only this host's clock
   * turns it into an end). Same merge rule: the later end wins; clamped to this config's maxCooldown.
   */
  coolDownFromPeer(remainingMs: number, source: string, value: string, now: number): boolean {
    const until = now + Math.min(Math.max(0, remainingMs), this.maxCooldownMs);
    if (until <= this.cooldownUntil) return false;
    // A new throttle (not an extension of one seen here): this gateway's window with the backend
    // ended too, so the capacity learner learns this gateway's share of the backend's window.
    if (!this.isCooling(now)) this.capacity.throttled();
    this.cooldownUntil = until;
    this.lastCooldown = { until, source: `peer:${source}`, value, setAt: now };
    return true;
  }
}

/** Owns every BackendState; a new config snapshot looks its state up by id. */
export class BackendStateRegistry {
  readonly #states = new Map<string, BackendState>();
  readonly #byShared = new Map<string, BackendState>();
  #listener: BackendStateListener | undefined;
  /** Consulted before each health probe (absent: always probe). */
  probeGate: ProbeGate | undefined;
  /** Called for every backend state made (a bus reads what its peers know about it). */
  onCreate: ((state: BackendState) => void) | undefined;

  get(id: string): BackendState {
    let state = this.#states.get(id);
    if (!state) {
      state = new BackendState(id);
      state.listener = this.#listener;
      this.#states.set(id, state);
      this.#byShared.set(state.sharedKey, state);
      this.onCreate?.(state);
    }
    return state;
  }

  /** The state a peer names by its shared key (undefined when this gateway has no such backend). */
  byShared(key: string): BackendState | undefined {
    return this.#byShared.get(key);
  }

  set listener(listener: BackendStateListener | undefined) {
    this.#listener = listener;
    for (const state of this.#states.values()) state.listener = listener;
  }

  /** Drops the state of backends no longer in the config. */
  retain(ids: ReadonlySet<string>): void {
    for (const [id, state] of this.#states) {
      if (ids.has(id)) continue;
      state.shutdown();
      this.#states.delete(id);
      this.#byShared.delete(state.sharedKey);
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
