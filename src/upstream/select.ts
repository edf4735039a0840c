// Backend selection: a pure function of (pool, state, now, already tried). Filters out backends
// that are cooling down or already tried in this request, takes the lowest priority number
// present, then picks within that level by the pool's balance mode.

import type { BackendState } from './backend-state.js';

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

/** True when the backend may receive a request now. Later issues add breaker/health/concurrency here. */
export function isReady(backend: SelectableBackend, now: number): boolean {
  return !backend.state.isCooling(now);
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

function candidate<B extends SelectableBackend>(input: SelectionInput<B>, backend: B, level: number): boolean {
  return backend.priority === level && (input.tried & (1 << backend.index)) === 0 && isReady(backend, input.now);
}

function pickWeightedRandom<B extends SelectableBackend>(input: SelectionInput<B>, level: number): B | undefined {
  let total = 0;
  let only: B | undefined;
  let count = 0;
  for (const backend of input.backends) {
    if (!candidate(input, backend, level)) continue;
    total += backend.weight;
    only = backend;
    count++;
  }
  if (count === 1) return only;
  let target = input.random() * total;
  for (const backend of input.backends) {
    if (!candidate(input, backend, level)) continue;
    target -= backend.weight;
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
    cursor.current[backend.index]! += backend.weight;
    total += backend.weight;
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
    const load = backend.state.inFlight / backend.weight;
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
