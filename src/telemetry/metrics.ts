// Prometheus metrics (prom-client) for GET /metrics on the admin listener. Counters and
// histograms are fed by observer events; backend gauges (cooldown, breaker, health, in-flight,
// queue) are read from the live snapshot at scrape time, so requests pay nothing for them.
// The per-request series are cells (cell-series.ts) cached per compiled route/backend: the hot
// path allocates nothing and hashes no label set for metrics.

import { llmTokenMetrics } from './llm-metrics.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CompiledBackend, CompiledRoute, CompiledUpstream, Snapshot } from '../snapshot/snapshot.js';
import type { AttemptOutcome } from '../core/events.js';
import { withDefaults, type ProxyObserver } from '../snapshot/observer.js';
import { backendLiveView, BREAKER_STATE_VALUE } from './backend-view.js';
import { CellCounter, CellHistogram, type CounterCell, type HistogramCell } from './cell-series.js';
import { backendLabel, methodIndex, methodLabel, routeLabel, statusClassIndex, statusClassLabel } from './labels.js';

export interface MetricsOptions {
  getSnapshot: () => Snapshot;
  /** Default process and Node.js runtime metrics. */
  process: boolean;
}

interface RequestCells {
  count: CounterCell;
  duration: HistogramCell;
}

interface RouteCells {
  name: string;
  failovers: HistogramCell;
  /** [method][status class] */
  requests: Array<Array<RequestCells | undefined> | undefined>;
}

interface BackendCells {
  upstream: string;
  backend: string;
  duration: HistogramCell;
  attempts: Partial<Record<AttemptOutcome, CounterCell>>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const UNMATCHED = {};

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly observer: ProxyObserver;
  readonly #routeCells = new WeakMap<object, RouteCells>();
  readonly #backendCells = new WeakMap<CompiledBackend, BackendCells>();
  readonly #requests: CellCounter<'route' | 'method' | 'status_class'>;
  readonly #requestDuration: CellHistogram<'route' | 'method' | 'status_class'>;
  readonly #failovers: CellHistogram<'route'>;
  readonly #attempts: CellCounter<'upstream' | 'backend' | 'outcome'>;
  readonly #attemptDuration: CellHistogram<'upstream' | 'backend'>;

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    const { getSnapshot } = options;
    if (options.process) collectDefaultMetrics({ register: this.registry });

    this.#requests = new CellCounter({
      name: 'spillway_requests_total',
      help: 'Client requests by route, method and status class ("none" = the client went away before a response).',
      labelNames: ['route', 'method', 'status_class'],
      registers,
    });
    const requestDuration = (this.#requestDuration = new CellHistogram({
      name: 'spillway_request_duration_seconds',
      help: 'Client request latency, from arrival to the end of the response.',
      labelNames: ['route', 'method', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers,
    }));
    const failovers = (this.#failovers = new CellHistogram({
      name: 'spillway_request_failovers',
      help: 'Failovers per request that reached an upstream (attempts after the first).',
      labelNames: ['route'],
      buckets: [0, 1, 2, 3, 5, 8],
      registers,
    }));
    this.#attempts = new CellCounter({
      name: 'spillway_upstream_attempts_total',
      help: 'Upstream attempts by outcome: ok, throttled, error, timeout, breaker_open, skipped_cooling, aborted.',
      labelNames: ['upstream', 'backend', 'outcome'],
      registers,
    });
    const attemptDuration = (this.#attemptDuration = new CellHistogram({
      name: 'spillway_upstream_attempt_duration_seconds',
      help: 'Time from dispatch to the response status line (or the failure) of one upstream attempt.',
      labelNames: ['upstream', 'backend'],
      buckets: LATENCY_BUCKETS,
      registers,
    }));
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
    const llmTokens = llmTokenMetrics(registers);
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
    for (const result of ['ok', 'rejected']) configReloads.inc({ result }, 0);
    limiterDegraded.set(0);
    for (const store of ['memory', 'local']) limiterEvictions.inc({ store }, 0);

    // Backend gauges: computed from the live snapshot when Prometheus scrapes.
    const backendGauge = (name: string, help: string, read: (view: ReturnType<typeof backendLiveView>) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['upstream', 'backend'],
        registers,
        collect() {
          this.reset();
          const now = Date.now();
          for (const upstream of getSnapshot().upstreams.values()) {
            for (const backend of upstream.backends) {
              const value = read(backendLiveView(backend.state, now));
              if (value !== undefined) this.set({ upstream: upstream.name, backend: backendLabel(backend) }, value);
            }
          }
        },
      });
    backendGauge('spillway_backend_cooling', '1 while the backend is cooling down after a throttle answer.', (view) =>
      view.cooling ? 1 : 0,
    );
    backendGauge(
      'spillway_backend_cooldown_remaining_seconds',
      "Seconds until the backend's cooldown ends (0 when ready).",
      (view) => view.cooldownRemainingSeconds,
    );
    backendGauge('spillway_backend_in_flight', 'Requests in flight to the backend.', (view) => view.inFlight);
    backendGauge(
      'spillway_backend_breaker_state',
      `Circuit breaker state: ${Object.entries(BREAKER_STATE_VALUE)
        .map(([state, value]) => `${value} ${state}`)
        .join(', ')}.`,
      (view) => view.breaker,
    );
    backendGauge('spillway_backend_healthy', '1 healthy, 0 unhealthy (active health checks).', (view) => view.healthy);
    backendGauge('spillway_backend_queue_depth', 'Requests waiting for a concurrency slot of the backend.', (view) => view.queued);

    const self = this;
    this.observer = withDefaults({
      request(route, method, status, durationMs, attemptCount) {
        const cells = self.#route(route);
        const series = self.#requestCells(cells, methodIndex(method), statusClassIndex(status));
        series.count.pending++;
        requestDuration.observe(series.duration, durationMs / 1000);
        if (attemptCount > 0) failovers.observe(cells.failovers, attemptCount - 1);
      },
      attempt(upstream, backend, outcome, _status, durationMs) {
        const cells = self.#backend(upstream, backend);
        (cells.attempts[outcome] ??= self.#attempts.cell({ upstream: cells.upstream, backend: cells.backend, outcome })).pending++;
        // breaker_open and skipped_cooling are reported for a backend skipped without a call: no duration to record.
        if (outcome !== 'breaker_open' && outcome !== 'skipped_cooling') attemptDuration.observe(cells.duration, durationMs / 1000);
      },
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
      llmTokens,
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
      aggregateResponse(route, partial) {
        aggregateResponses.inc({ route: route.name, partial: String(partial) });
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for one scrape. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  #route(route: CompiledRoute | undefined): RouteCells {
    const key = route ?? UNMATCHED;
    let cells = this.#routeCells.get(key);
    if (!cells) {
      const name = routeLabel(route);
      cells = { name, failovers: this.#failovers.cell({ route: name }), requests: [] };
      this.#routeCells.set(key, cells);
    }
    return cells;
  }

  #requestCells(cells: RouteCells, method: number, statusClass: number): RequestCells {
    const byClass = (cells.requests[method] ??= []);
    let series = byClass[statusClass];
    if (!series) {
      const labels = { route: cells.name, method: methodLabel(method), status_class: statusClassLabel(statusClass) };
      series = byClass[statusClass] = { count: this.#requests.cell(labels), duration: this.#requestDuration.cell(labels) };
    }
    return series;
  }

  #backend(upstream: CompiledUpstream, backend: CompiledBackend): BackendCells {
    let cells = this.#backendCells.get(backend);
    if (!cells) {
      const labels = { upstream: upstream.name, backend: backendLabel(backend) };
      cells = { ...labels, duration: this.#attemptDuration.cell(labels), attempts: {} };
      this.#backendCells.set(backend, cells);
    }
    return cells;
  }
}
