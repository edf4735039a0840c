// Decision events as one info log line each — the gateway's operational event stream — and the
// recent ones in a ring buffer for GET /admin/events. Per-request decisions (pool exhausted,
// retries, rejections) go to debug only: at info they would be a line per request.

import type { CompiledBackend, CompiledUpstream } from '../snapshot/snapshot.js';
import { withDefaults, type ProxyObserver } from '../snapshot/observer.js';
import type { DecisionEvent, EventBuffer } from './event-buffer.js';
import { backendLabel } from './labels.js';
import type { Logger } from './logger.js';

export interface LogObserver extends ProxyObserver {
  /** Cancels pending "backend recovered" timers. */
  close(): void;
}

export function logObserver(logger: Logger, events?: EventBuffer): LogObserver {
  const recoveryTimers = new Map<string, NodeJS.Timeout>();

  /** Buffers the event for /admin/events and logs it (unless its producer already logs it). */
  function decision(event: string, msg: string, fields: Record<string, unknown>, level: 'info' | 'warn' | 'none' = 'info'): void {
    const entry: DecisionEvent = { time: new Date().toISOString(), event, msg, ...fields };
    events?.push(entry);
    if (level === 'none') return;
    const { time: _time, msg: _msg, ...logged } = entry;
    logger[level](logged, msg);
  }

  function backendFields(upstream: CompiledUpstream, backend: CompiledBackend): Record<string, unknown> {
    return { upstream: upstream.name, backend: backendLabel(backend) };
  }

  /** Logs "backend recovered" when the cooldown's end passes without a new extension. */
  function watchRecovery(upstream: CompiledUpstream, backend: CompiledBackend, until: number): void {
    clearTimeout(recoveryTimers.get(backend.id));
    const timer = setTimeout(
      () => {
        recoveryTimers.delete(backend.id);
        const { state } = backend;
        if (state.isCooling(Date.now())) return;
        decision('backend.recovered', 'backend ready again after its cooldown', {
          ...backendFields(upstream, backend),
          cooledDownSince: state.lastCooldown ? new Date(state.lastCooldown.setAt).toISOString() : undefined,
        });
      },
      Math.max(0, until - Date.now()) + 1,
    );
    timer.unref();
    recoveryTimers.set(backend.id, timer);
  }

  const observer = withDefaults({
    cooldown(upstream, backend, cooldown, extended) {
      if (!extended) return;
      decision('backend.cooldown', 'backend cooling down', {
        ...backendFields(upstream, backend),
        until: new Date(cooldown.until).toISOString(),
        delayMs: cooldown.delayMs,
        source: cooldown.source,
        value: cooldown.value,
      });
      watchRecovery(upstream, backend, cooldown.until);
    },
    breakerStateChange(upstream, backend, state) {
      const msg = state === 'open' ? 'breaker opened' : state === 'closed' ? 'breaker closed' : 'breaker half-open';
      decision('backend.breaker', msg, { ...backendFields(upstream, backend), state });
    },
    healthChange(upstream, backend, healthy) {
      decision('backend.health', healthy ? 'backend healthy' : 'backend unhealthy', { ...backendFields(upstream, backend), healthy });
    },
    configReload(result, detail) {
      // The reloader writes the log line itself (with trigger, file, errors): buffer only.
      decision('config.reload', result === 'ok' ? 'config reloaded' : 'config rejected', { result, detail }, 'none');
    },
    tlsError(upstream, backend, code, reason) {
      decision('backend.tls_error', 'TLS to backend failed', { ...backendFields(upstream, backend), code, reason }, 'warn');
    },
    limiterDegraded(degraded, reason) {
      decision(degraded ? 'limiter.degraded' : 'limiter.recovered', degraded ? 'rate limiter degraded' : 'rate limiter recovered', {
        degraded,
        reason,
      });
    },
    poolExhausted(route, retryAfterMs, upstream) {
      logger.debug(
        { event: 'pool.exhausted', route: route.name, upstream: (upstream ?? route.upstream)?.name, retryAfterMs },
        'every backend cooling: answered 429',
      );
    },
    retry(upstream, backend, reason) {
      logger.debug({ event: 'upstream.retry', ...backendFields(upstream, backend), reason }, 'retrying on another backend');
    },
    holdEnded(upstream, outcome, waitedMs) {
      logger.debug(
        { event: 'upstream.hold', upstream: upstream.name, outcome, heldMs: Math.round(waitedMs) },
        'held request left the hold',
      );
    },
    concurrencyRejected(upstream, backend, reason) {
      logger.debug(
        { event: 'concurrency.rejected', upstream: upstream.name, backend: backend ? backendLabel(backend) : undefined, reason },
        'concurrency limit refused a request',
      );
    },
    websocketClosed(upstream, backend, reason, durationMs) {
      if (reason === 'closed') return;
      logger.info(
        { event: 'websocket.closed', ...backendFields(upstream, backend), reason, durationMs: Math.round(durationMs) },
        'WebSocket tunnel ended by the gateway',
      );
    },
    mirrorCompared(route, comparison) {
      if (comparison.statusEqual && comparison.bodyEqual !== false) return;
      logger.debug({ event: 'mirror.mismatch', route: route.name, ...comparison }, 'mirror answer differs from the primary');
    },
  });
  return Object.assign(observer, {
    close() {
      for (const timer of recoveryTimers.values()) clearTimeout(timer);
      recoveryTimers.clear();
    },
  });
}
