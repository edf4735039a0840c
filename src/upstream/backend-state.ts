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

  constructor(id: string) {
    this.id = id;
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
    for (const id of this.#states.keys()) if (!ids.has(id)) this.#states.delete(id);
  }

  get size(): number {
    return this.#states.size;
  }
}

export function backendId(upstream: string, url: string): string {
  return `${upstream} ${url}`;
}
