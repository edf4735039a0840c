// Binds an upstream's resilience policies to the live state of each of its backends when a
// snapshot is compiled. Live parts (breaker, health monitor, queue) survive a reload that keeps
// their settings; changed settings replace them; removed blocks drop them.

import type { BackendState, ProbeGate } from '../state/backend-state.js';
import type { ProxyObserver } from './observer.js';
import type { CompiledBackend, CompiledUpstream } from './snapshot.js';
import { applyHeaderEdit } from '../routing/header-edit.js';
import { BackendBreaker } from '../resilience/breaker.js';
import { BackendQueue } from '../resilience/concurrency.js';
import { HealthMonitor, type ProbeTarget } from '../resilience/health-check.js';

export interface ResilienceOwner {
  observer: ProxyObserver;
  /** Whether this gateway probes a backend now (peers may share one probe); absent: always. */
  probeGate?: ProbeGate | undefined;
}

export function attachResilience(owner: ResilienceOwner, upstream: CompiledUpstream, backend: CompiledBackend): void {
  const { state } = backend;
  const { breaker, healthCheck, concurrency } = upstream.resilience;
  // The newest snapshot's objects name the backend in events.
  const current = { upstream, backend };
  bindings.set(state, current);

  if (breaker) {
    if (state.breaker?.policy.key !== breaker.key) {
      state.breaker?.shutdown();
      let probePasses = 0;
      const openFor = breaker.openFor;
      state.breaker = new BackendBreaker(breaker, (next, fromPeer) => {
        probePasses = 0;
        if (next === 'open' && !fromPeer) state.listener?.breakerOpened(state, openFor);
        const bound = bindings.get(state) ?? current;
        owner.observer.breakerStateChange(bound.upstream, bound.backend, next);
      });
      probeHooks.set(state, () => {
        const live = state.breaker;
        if (!live || live.state === 'closed' || !state.health) return;
        if (++probePasses >= state.health.policy.healthyAfter) live.closeEarly();
      });
    }
  } else if (state.breaker) {
    state.breaker.shutdown();
    state.breaker = undefined;
  }

  const probeHeaders: Record<string, string | string[]> = { host: backend.authority, 'user-agent': 'spillway-health-check' };
  const target: ProbeTarget = {
    dispatcher: backend.dispatcher,
    headers: backend.headerEdit ? applyHeaderEdit(probeHeaders, backend.headerEdit) : probeHeaders,
    servername: backend.tls?.servername,
  };
  if (healthCheck) {
    if (state.health?.policy.key !== healthCheck.key) {
      state.health?.stop();
      const monitor = new HealthMonitor(healthCheck, target, (passed, changed) => {
        const bound = bindings.get(state) ?? current;
        if (changed) owner.observer.healthChange(bound.upstream, bound.backend, monitor.healthy);
        if (passed) probeHooks.get(state)?.();
      });
      // A disabled backend is not probed (HAProxy's maint); a drained one still is.
      monitor.gate = () => state.adminMode !== 'disable' && (owner.probeGate?.(state, healthCheck.interval) ?? true);
      monitor.onLocalProbe = (passed, error) => state.listener?.probed(state, passed, error);
      state.health = monitor;
      monitor.start();
    } else {
      state.health.target = target;
    }
  } else if (state.health) {
    state.health.stop();
    state.health = undefined;
  }

  if (concurrency) {
    state.maxConcurrent = concurrency.perBackend;
    if (state.queue) state.queue.policy = concurrency;
    else state.queue = new BackendQueue(concurrency);
  } else {
    state.queue?.clear();
    state.queue = undefined;
    state.maxConcurrent = Infinity;
  }
}

const bindings = new WeakMap<BackendState, { upstream: CompiledUpstream; backend: CompiledBackend }>();
const probeHooks = new WeakMap<BackendState, () => void>();
