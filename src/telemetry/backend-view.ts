// The live numbers of one backend, read at scrape time from its BackendState. Resilience state
// (breaker, health checks, concurrency queue) is reported only where the upstream configures it.

import type { BackendState } from '../state/backend-state.js';
import type { BreakerState } from '../core/events.js';

export interface BackendLiveView {
  cooling: boolean;
  cooldownRemainingSeconds: number;
  inFlight: number;
  /** 0 closed, 1 half-open, 2 open; undefined when the upstream has no breaker. */
  breaker: number | undefined;
  /** 1 healthy, 0 unhealthy; undefined when the upstream has no health checks. */
  healthy: number | undefined;
  /** Requests waiting for a concurrency slot; undefined when the upstream has no concurrency limit. */
  queued: number | undefined;
  /** 0 active, 1 drain, 2 disable (admin API). */
  adminMode: number;
}

const ADMIN_MODE_VALUE = { active: 0, drain: 1, disable: 2 } as const;

export const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export function backendLiveView(state: BackendState, now: number): BackendLiveView {
  const cooling = state.isCooling(now);
  return {
    cooling,
    cooldownRemainingSeconds: cooling ? (state.cooldownUntil - now) / 1000 : 0,
    inFlight: state.inFlight,
    breaker: state.breaker === undefined ? undefined : BREAKER_STATE_VALUE[state.breaker.state],
    healthy: state.health === undefined ? undefined : state.health.healthy ? 1 : 0,
    queued: state.queue === undefined ? undefined : state.queue.size,
    adminMode: ADMIN_MODE_VALUE[state.adminMode],
  };
}

export type BackendStateName = 'ready' | 'cooling' | 'open' | 'half-open' | 'unhealthy' | 'full' | 'draining' | 'disabled';

/** The one word an operator reads first: why a backend does (not) take requests now. */
export function backendStateName(state: BackendState, now: number): BackendStateName {
  if (state.adminMode === 'disable') return 'disabled';
  if (state.adminMode === 'drain') return 'draining';
  if (state.isCooling(now)) return 'cooling';
  if (state.breaker && state.breaker.state !== 'closed') return state.breaker.state;
  if (!state.healthy) return 'unhealthy';
  if (state.inFlight >= state.maxConcurrent) return 'full';
  return 'ready';
}
