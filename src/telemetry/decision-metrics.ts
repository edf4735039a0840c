// The counters of the gateway's decisions — cooldowns, pool answers, limits, breakers, health,
// retries, holds, reloads, mirrors, fan-out, client timeouts, cache — as plain prom-client
// metrics, with the observer handlers that count them. Label values come from config names and
// small fixed sets (labels.ts). The per-request series are cells in metrics.ts.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ProxyObserver } from '../snapshot/observer.js';
import { backendLabel } from './labels.js';

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Registers the decision counters on `registers` and returns the observer handlers that feed them. */
export function decisionMetrics(registers: Registry[]): Partial<ProxyObserver> {
  const cooldowns = new Counter({
    name: 'spillway_backend_cooldowns_total',
    help: 'Throttle answers that set or extended a cooldown, by the header the delay came from ("default" = no usable hint).',
    labelNames: ['upstream', 'backend', 'source'],
    registers,
  });
  const poolExhausted = new Counter({
    name: 'spillway_pool_exhausted_total',
    help: 'Gateway-made 429s: every backend of the pool was cooling down.',
    labelNames: ['route', 'upstream'],
    registers,
  });
  const passedThrough = new Counter({
    name: 'spillway_throttle_passed_through_total',
    help: 'Backend throttle answers (429, or 503 with a hint) passed to the client because no failover was possible.',
    labelNames: ['upstream', 'backend', 'status'],
    registers,
  });
  const tlsErrors = new Counter({
    name: 'spillway_backend_tls_errors_total',
    help: 'TLS handshake or certificate failures with a backend, by error code.',
    labelNames: ['upstream', 'backend', 'code'],
    registers,
  });
  const websocketOpened = new Counter({
    name: 'spillway_websocket_tunnels_opened_total',
    help: 'WebSocket tunnels opened to a backend.',
    labelNames: ['upstream', 'backend'],
    registers,
  });
  const websocketClosed = new Counter({
    name: 'spillway_websocket_tunnels_closed_total',
    help: 'WebSocket tunnels ended, by reason.',
    labelNames: ['upstream', 'backend', 'reason'],
    registers,
  });
  const websocketOpen = new Gauge({
    name: 'spillway_websocket_tunnels_open',
    help: 'WebSocket tunnels open now.',
    labelNames: ['upstream', 'backend'],
    registers,
  });
  const clientLimited = new Counter({
    name: 'spillway_client_limited_total',
    help: 'Client-limit 429s: requests refused by a client rate limit policy.',
    labelNames: ['policy'],
    registers,
  });
  const limiterDecisions = new Counter({
    name: 'spillway_limiter_decisions_total',
    help: 'Client rate limiter decisions by policy and result (allowed, limited, queued, error).',
    labelNames: ['policy', 'result'],
    registers,
  });
  const limiterDegraded = new Gauge({
    name: 'spillway_limiter_degraded',
    help: '1 while the shared limiter store (Redis) is unreachable and limits run degraded.',
    registers,
  });
  const limiterEvictions = new Counter({
    name: 'spillway_limiter_evictions_total',
    help: 'In-memory rate-limit buckets evicted (fullest first) to stay under limits.maxMemoryBuckets.',
    labelNames: ['store'],
    registers,
  });
  const breakerTransitions = new Counter({
    name: 'spillway_breaker_transitions_total',
    help: 'Circuit breaker state changes, by the state entered.',
    labelNames: ['upstream', 'backend', 'state'],
    registers,
  });
  const healthChanges = new Counter({
    name: 'spillway_health_changes_total',
    help: 'Active health check verdict changes.',
    labelNames: ['upstream', 'backend', 'healthy'],
    registers,
  });
  const retries = new Counter({
    name: 'spillway_retries_total',
    help: 'Retries of a failed attempt on another backend, by reason.',
    labelNames: ['upstream', 'backend', 'reason'],
    registers,
  });
  const concurrencyRejected = new Counter({
    name: 'spillway_concurrency_rejected_total',
    help: 'Requests refused by a concurrency limit (queue full, or waited too long).',
    labelNames: ['upstream', 'backend', 'reason'],
    registers,
  });
  const heldNow = new Gauge({
    name: 'spillway_held_requests',
    help: 'Requests held now until a cooling backend is ready (throttle.hold).',
    labelNames: ['upstream'],
    registers,
  });
  const holdEnded = new Counter({
    name: 'spillway_hold_outcomes_total',
    help: 'Held requests by how their hold ended: released, expired, queue-full (never held), removed, shutdown.',
    labelNames: ['upstream', 'outcome'],
    registers,
  });
  const holdSeconds = new Histogram({
    name: 'spillway_hold_seconds',
    help: 'Time a request was held before it was released or answered.',
    labelNames: ['upstream', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers,
  });
  const configReloads = new Counter({
    name: 'spillway_config_reloads_total',
    help: 'Config reloads by result (ok, rejected).',
    labelNames: ['result'],
    registers,
  });
  const mirrorComparisons = new Counter({
    name: 'spillway_mirror_comparisons_total',
    help: 'Mirrored requests compared with the primary answer: match, status_mismatch, body_mismatch.',
    labelNames: ['route', 'result'],
    registers,
  });
  const aggregateParts = new Counter({
    name: 'spillway_aggregate_parts_total',
    help: 'Fan-out parts by outcome.',
    labelNames: ['route', 'part', 'outcome'],
    registers,
  });
  const aggregatePartDuration = new Histogram({
    name: 'spillway_aggregate_part_duration_seconds',
    help: 'Fan-out part latency.',
    labelNames: ['route', 'part'],
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const aggregateResponses = new Counter({
    name: 'spillway_aggregate_responses_total',
    help: 'Fan-out responses; partial="true" when some part failed or timed out.',
    labelNames: ['route', 'partial'],
    registers,
  });
  const clientTimeouts = new Counter({
    name: 'spillway_client_timeouts_total',
    help: 'Client requests answered 408 because the client was too slow (listen.timeouts), by timeout.',
    labelNames: ['timeout'],
    registers,
  });
  const clientProtocolErrors = new Counter({
    name: 'spillway_client_protocol_errors_total',
    help: 'Client requests refused before routing (bad framing, headers too large) and HTTP/2 streams or connections cut (rapid reset), by reason.',
    labelNames: ['reason'],
    registers,
  });
  for (const timeout of ['requestHeaders', 'requestBodyIdle', 'requestBody']) clientTimeouts.inc({ timeout }, 0);
  const cacheRequests = new Counter({
    name: 'spillway_cache_requests_total',
    help: 'Requests of cached routes by result: hit, miss, stale, collapsed, revalidated, bypass.',
    labelNames: ['route', 'result'],
    registers,
  });
  const cacheBytes = new Counter({
    name: 'spillway_cache_bytes_total',
    help: 'Body bytes served from the cache (direction="served") and written to it (direction="stored").',
    labelNames: ['route', 'direction'],
    registers,
  });
  for (const result of ['ok', 'rejected']) configReloads.inc({ result }, 0);
  limiterDegraded.set(0);
  for (const store of ['memory', 'local']) limiterEvictions.inc({ store }, 0);

  return {
    cooldown(upstream, backend, decision, extended) {
      if (extended) cooldowns.inc({ upstream: upstream.name, backend: backendLabel(backend), source: decision.source });
    },
    poolExhausted(route, _retryAfterMs, upstream) {
      poolExhausted.inc({ route: route.name, upstream: (upstream ?? route.upstream)?.name ?? '' });
    },
    throttlePassedThrough(upstream, backend, status) {
      passedThrough.inc({ upstream: upstream.name, backend: backendLabel(backend), status: String(status) });
    },
    tlsError(upstream, backend, code) {
      tlsErrors.inc({ upstream: upstream.name, backend: backendLabel(backend), code });
    },
    websocketOpened(upstream, backend) {
      const labels = { upstream: upstream.name, backend: backendLabel(backend) };
      websocketOpened.inc(labels);
      websocketOpen.inc(labels);
    },
    websocketClosed(upstream, backend, reason) {
      const labels = { upstream: upstream.name, backend: backendLabel(backend) };
      websocketClosed.inc({ ...labels, reason });
      websocketOpen.dec(labels);
    },
    limiterDecision(policy, result) {
      limiterDecisions.inc({ policy, result });
      if (result === 'limited') clientLimited.inc({ policy });
    },
    limiterDegraded(degraded) {
      limiterDegraded.set(degraded ? 1 : 0);
    },
    limiterEvicted(store, count) {
      limiterEvictions.inc({ store }, count);
    },
    breakerStateChange(upstream, backend, state) {
      breakerTransitions.inc({ upstream: upstream.name, backend: backendLabel(backend), state });
    },
    healthChange(upstream, backend, healthy) {
      healthChanges.inc({ upstream: upstream.name, backend: backendLabel(backend), healthy: String(healthy) });
    },
    retry(upstream, backend, reason) {
      retries.inc({ upstream: upstream.name, backend: backendLabel(backend), reason });
    },
    held(upstream) {
      heldNow.inc({ upstream: upstream.name });
    },
    holdEnded(upstream, outcome, waitedMs) {
      holdEnded.inc({ upstream: upstream.name, outcome });
      if (outcome === 'queue-full') return;
      heldNow.dec({ upstream: upstream.name });
      holdSeconds.observe({ upstream: upstream.name, outcome }, waitedMs / 1000);
    },
    concurrencyRejected(upstream, backend, reason) {
      concurrencyRejected.inc({ upstream: upstream.name, backend: backend ? backendLabel(backend) : '', reason });
    },
    configReload(result) {
      configReloads.inc({ result });
    },
    mirrorCompared(route, comparison) {
      const result = !comparison.statusEqual ? 'status_mismatch' : comparison.bodyEqual === false ? 'body_mismatch' : 'match';
      mirrorComparisons.inc({ route: route.name, result });
    },
    aggregatePart(route, part, outcome, durationMs) {
      aggregateParts.inc({ route: route.name, part, outcome });
      aggregatePartDuration.observe({ route: route.name, part }, durationMs / 1000);
    },
    clientTimeout(kind) {
      clientTimeouts.inc({ timeout: kind });
    },
    clientProtocolError(reason) {
      clientProtocolErrors.inc({ reason });
    },
    aggregateResponse(route, partial) {
      aggregateResponses.inc({ route: route.name, partial: String(partial) });
    },
    cacheLookup(route, result, bytes) {
      cacheRequests.inc({ route: route.name, result });
      if (bytes > 0) cacheBytes.inc({ route: route.name, direction: 'served' }, bytes);
    },
    cacheStored(route, bytes) {
      cacheBytes.inc({ route: route.name, direction: 'stored' }, bytes);
    },
  };
}
