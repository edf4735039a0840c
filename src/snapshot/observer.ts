// The event vocabulary of core/events.ts with this gateway's subjects: compiled upstreams,
// backends and routes. A no-op for every event, and helpers to fill in or combine observers.

import type { ProxyEvents } from '../core/events.js';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from './snapshot.js';

export type ProxyObserver = ProxyEvents<CompiledUpstream, CompiledBackend, CompiledRoute>;

export const silentObserver: ProxyObserver = {
  cooldown() {},
  attempt() {},
  poolExhausted() {},
  tlsError() {},
  websocketOpened() {},
  websocketClosed() {},
  throttlePassedThrough() {},
  request() {},
  llmTokens() {},
  limiterDecision() {},
  limiterDegraded() {},
  limiterEvicted() {},
  breakerStateChange() {},
  healthChange() {},
  retry() {},
  concurrencyRejected() {},
  held() {},
  holdEnded() {},
  configReload() {},
  mirrorCompared() {},
  aggregatePart() {},
  aggregateResponse() {},
  clientTimeout() {},
  clientProtocolError() {},
  cacheLookup() {},
  cacheStored() {},
};

/** A full observer from a partial one (the rest are no-ops). */
export function withDefaults(partial: Partial<ProxyObserver>): ProxyObserver {
  return { ...silentObserver, ...partial };
}

/**
 * Calls every observer in turn (metrics + logs + traces). An observer that leaves an event to the
 * silent default is not called for it, and an event only one observer handles calls it directly:
 * the per-request events (request, attempt) then cost one call, no argument array.
 */
export function combineObservers(...observers: ProxyObserver[]): ProxyObserver {
  const combined = {} as Record<keyof ProxyObserver, (...args: never[]) => void>;
  for (const name of Object.keys(silentObserver) as Array<keyof ProxyObserver>) {
    const silent = silentObserver[name] as (...args: never[]) => void;
    const active = observers.filter((observer) => observer[name] !== silent);
    const calls = active.map((observer) => (observer[name] as (...args: unknown[]) => void).bind(observer));
    if (calls.length === 0) combined[name] = silent;
    else if (calls.length === 1) combined[name] = calls[0]!;
    else
      combined[name] = (...args: never[]) => {
        for (const call of calls) call(...args);
      };
  }
  return combined as unknown as ProxyObserver;
}
