import { withDefaults, type ProxyObserver } from '../upstream/observer.js';
import type { Logger } from './logger.js';

/** Decision events as one log line each: the operator's event stream. */
export function logObserver(logger: Logger): ProxyObserver {
  return withDefaults({
    cooldown(upstream, backend, decision, extended) {
      if (!extended) return;
      logger.info(
        { event: 'backend.cooldown', upstream: upstream.name, backend: backend.url, until: new Date(decision.until).toISOString(), delayMs: decision.delayMs, source: decision.source, value: decision.value },
        'backend cooling down',
      );
    },
    websocketClosed(upstream, backend, reason, durationMs) {
      if (reason === 'closed') return;
      logger.info({ event: 'websocket.closed', upstream: upstream.name, backend: backend.name ?? backend.url, reason, durationMs: Math.round(durationMs) }, 'WebSocket tunnel ended by the gateway');
    },
    limiterDegraded(degraded, reason) {
      if (degraded) logger.warn({ event: 'limiter.degraded', degraded, reason }, 'rate limiter degraded: redis unavailable, onRedisError applies');
      else logger.info({ event: 'limiter.degraded', degraded, reason }, 'rate limiter back on redis');
    },
    tlsError(upstream, backend, code, reason) {
      logger.warn({ event: 'backend.tls_error', upstream: upstream.name, backend: backend.name ?? backend.url, code, reason }, 'TLS to backend failed');
    },
    breakerStateChange(upstream, backend, state) {
      logger.warn({ event: 'backend.breaker', upstream: upstream.name, backend: backend.name ?? backend.url, state }, `circuit breaker ${state}`);
    },
    healthChange(upstream, backend, healthy) {
      logger.warn({ event: 'backend.health', upstream: upstream.name, backend: backend.name ?? backend.url, healthy }, healthy ? 'backend healthy' : 'backend unhealthy');
    },
  });
}
