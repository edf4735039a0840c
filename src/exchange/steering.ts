// Steer before the 429: every answer's announced budget feeds its backend's capacity learner
// (state/backend-capacity.ts), and before each pick a backend whose learner says the next request would
// be refused — announced remaining requests 0, remaining tokens below this request's estimate, or
// its declared rpm/tpm spent this minute — cools down until the announced reset, so no request is
// spent on its 429. With `predictive: { lowWater }`, a backend whose remaining is merely low gets
// a smaller share. Off with `throttle: { predictive: false }`.

import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledBackend, CompiledUpstream } from '../snapshot/snapshot.js';
import { hasCapacityHeaders, readCapacity } from '../resilience/capacity-headers.js';
import type { ResponseHeaders } from '../resilience/retry-hints.js';

/** An answer's headers: what the backend says it has left. */
export function learnCapacity(upstream: CompiledUpstream, backend: CompiledBackend, headers: ResponseHeaders, now: number): void {
  if (upstream.throttle.predictive === undefined || !hasCapacityHeaders(headers)) return;
  const reading = readCapacity(headers);
  if (reading === undefined) return;
  const state = backend.state;
  // This answer's own request is still counted in flight.
  state.capacity.observe(reading, now, Math.max(0, state.inFlight - 1));
}

/** Before a pick: backends that would refuse a request of `tokens` cool down until they would not. */
export function steer(upstream: CompiledUpstream, tokens: number, now: number, observer: ProxyObserver): void {
  const predictive = upstream.throttle.predictive;
  if (predictive === undefined) return;
  for (const backend of upstream.backends) {
    const { state } = backend;
    const capacity = state.capacity;
    if (!capacity.steers) continue;
    if (predictive.lowWater !== undefined) state.share = capacity.share(now, predictive.lowWater);
    if (state.cooldownUntil > now) continue;
    const blocked = capacity.blockedUntil(now, tokens);
    if (blocked === undefined || blocked.until <= now) continue;
    const decision = { until: blocked.until, delayMs: blocked.until - now, source: `predictive:${blocked.source}`, value: blocked.value };
    if (state.coolDownUntil(decision.until, decision.source, decision.value, now)) observer.cooldown(upstream, backend, decision, true);
  }
}
