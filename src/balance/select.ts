// Backend selection: a pure function of (pool, state, now, already tried). Filters out backends
// that an operator drained or disabled, that are cooling down, have an open breaker, fail health checks, have no free concurrency slot
// or were already tried in this request; takes the lowest priority number present, then picks
// within that level by the pool's balance mode.

import type { BackendState } from '../state/backend-state.js';

export type BalanceMode = 'priority' | 'round-robin' | 'least-outstanding';

export interface SelectableBackend {
  readonly index: number;
  readonly priority: number;
  readonly weight: number;
  readonly state: BackendState;
}

/** Per-pool mutable cursor for smooth weighted round-robin (nginx's algorithm). */
export interface RoundRobinCursor {
  current: Float64Array;
}

export interface SelectionInput<B extends SelectableBackend> {
  backends: readonly B[];
  balance: BalanceMode;
  now: number;
  /** Bit set of backend indexes already tried in this request. */
  tried: number;
  random: () => number;
  cursor?: RoundRobinCursor;
}

/** True when the backend may receive a request now: not cooling, breaker closed (or a half-open trial left), healthy, a free slot. */
export function isReady(backend: SelectableBackend, now: number): boolean {
  return !backend.state.isCooling(now) && backend.state.admits();
}

/** Why no backend of a pool can take a request now, and when the soonest one could. */
export type PoolBlock<B extends SelectableBackend = SelectableBackend> =
  /** every backend is cooling down (throttled): the gateway's 429 */
  | { readonly kind: 'throttled'; readonly readyAt: number }
  /** breakers open / unhealthy (maybe some cooling too): 503 */
  | { readonly kind: 'unavailable'; readonly readyAt: number }
  /** at least one backend is only out of concurrency slots: wait in its queue */
  | { readonly kind: 'full'; readonly backend: B };

export function poolBlock<B extends SelectableBackend>(backends: readonly B[], now: number): PoolBlock<B> {
  let allCooling = true;
  let readyAt = Infinity;
  let full: B | undefined;
  for (const backend of backends) {
    const { state } = backend;
    const cooling = state.isCooling(now);
    if (!cooling) allCooling = false;
    const breaker = state.breaker;
    const breakerBlocks = breaker !== undefined && !breaker.canPass();
    const unhealthy = !state.healthy;
    // Drained or disabled by an operator: out until someone enables it (a second is a guess to retry).
    const off = !state.enabled;
    if (!cooling && !breakerBlocks && !unhealthy && !off) {
      // Only the concurrency limit holds it back: prefer the lowest priority, then the shortest queue.
      if (!full || backend.priority < full.priority || (backend.priority === full.priority && state.queued < full.state.queued))
        full = backend;
      continue;
    }
    let at = cooling ? state.cooldownUntil : now;
    if (breakerBlocks) at = Math.max(at, breaker.state === 'open' ? breaker.halfOpenAt : now);
    if (unhealthy) at = Math.max(at, state.health!.healthyAgainAt);
    if (off) at = Math.max(at, now + 1_000);
    if (at < readyAt) readyAt = at;
  }
  if (full) return { kind: 'full', backend: full };
  if (allCooling) return { kind: 'throttled', readyAt: soonestReady(backends, now) };
  return { kind: 'unavailable', readyAt: Math.max(now, readyAt) };
}

export function pickBackend<B extends SelectableBackend>(input: SelectionInput<B>): B | undefined {
  const { backends, now, tried } = input;
  // Lowest priority level with at least one ready, untried backend.
  let level = Infinity;
  for (const backend of backends) {
    if (backend.priority < level && (tried & (1 << backend.index)) === 0 && isReady(backend, now)) level = backend.priority;
  }
  if (level === Infinity) return undefined;

  switch (input.balance) {
    case 'least-outstanding':
      return pickLeastOutstanding(input, level);
    case 'round-robin':
      return pickRoundRobin(input, level);
    default:
      return pickWeightedRandom(input, level);
  }
}

/** The backend's weight, scaled by its learnt share (opt-in lowWater steering; 1 otherwise). */
function weightOf(backend: SelectableBackend): number {
  return backend.weight * backend.state.share;
}

function candidate<B extends SelectableBackend>(input: SelectionInput<B>, backend: B, level: number): boolean {
  return backend.priority === level && (input.tried & (1 << backend.index)) === 0 && isReady(backend, input.now);
}

function pickWeightedRandom<B extends SelectableBackend>(input: SelectionInput<B>, level: number): B | undefined {
  let total = 0;
  let only: B | undefined;
  let count = 0;
  for (const backend of input.backends) {
    if (!candidate(input, backend, level)) continue;
    total += weightOf(backend);
    only = backend;
    count++;
  }
  if (count === 1) return only;
  let target = input.random() * total;
  for (const backend of input.backends) {
    if (!candidate(input, backend, level)) continue;
    target -= weightOf(backend);
    if (target < 0) return backend;
  }
  return only;
}

function pickRoundRobin<B extends SelectableBackend>(input: SelectionInput<B>, level: number): B | undefined {
  const cursor = input.cursor;
  if (!cursor) return pickWeightedRandom(input, level);
  let total = 0;
  let best: B | undefined;
  for (const backend of input.backends) {
    if (!candidate(input, backend, level)) continue;
    cursor.current[backend.index]! += weightOf(backend);
    total += weightOf(backend);
    if (!best || cursor.current[backend.index]! > cursor.current[best.index]!) best = backend;
  }
  if (best) cursor.current[best.index]! -= total;
  return best;
}

function pickLeastOutstanding<B extends SelectableBackend>(input: SelectionInput<B>, level: number): B | undefined {
  let best: B | undefined;
  let bestLoad = Infinity;
  let ties = 0;
  for (const backend of input.backends) {
    if (!candidate(input, backend, level)) continue;
    const load = backend.state.inFlight / weightOf(backend);
    if (load < bestLoad) {
      best = backend;
      bestLoad = load;
      ties = 1;
    } else if (load === bestLoad) {
      // Reservoir sampling among ties so equal backends share the load.
      ties++;
      if (input.random() * ties < 1) best = backend;
    }
  }
  return best;
}

/** Epoch ms when the soonest backend of the pool is ready again (for the gateway's own 429). */
export function soonestReady(backends: readonly SelectableBackend[], now: number): number {
  let soonest = Infinity;
  for (const backend of backends) {
    const at = Math.max(now, backend.state.cooldownUntil);
    if (at < soonest) soonest = at;
  }
  return soonest;
}
