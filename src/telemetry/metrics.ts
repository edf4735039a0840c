// Prometheus metrics (prom-client) for GET /metrics on the admin listener. Counters and
// histograms are fed by observer events; backend gauges (cooldown, breaker, health, in-flight,
// queue) are read from the live snapshot at scrape time, so requests pay nothing for them.
// The per-request series are cells (cell-series.ts) cached per compiled route/backend: the hot
// path allocates nothing and hashes no label set for metrics. The counters of the gateway's other
// decisions (cooldowns, limits, breakers, holds, cache, …) are in decision-metrics.ts.

import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { CompiledBackend, CompiledRoute, CompiledUpstream, Snapshot } from '../snapshot/snapshot.js';
import type { AttemptOutcome } from '../core/events.js';
import { withDefaults, type ProxyObserver } from '../snapshot/observer.js';
import { backendLiveView, BREAKER_STATE_VALUE } from './backend-view.js';
import { CellCounter, CellHistogram, type CounterCell, type HistogramCell } from './cell-series.js';
import { decisionMetrics, LATENCY_BUCKETS } from './decision-metrics.js';
import { llmTokenMetrics } from './llm-metrics.js';
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
    // Backend gauges: computed from the live snapshot when Prometheus scrapes.
    // With worker processes /metrics sums every worker's registry: state every worker shares
    // (cooling, breaker, health, admin mode) is reported once (max), per-process loads are summed.
    const backendGauge = (
      name: string,
      help: string,
      read: (view: ReturnType<typeof backendLiveView>) => number | undefined,
      aggregator: 'max' | 'sum' = 'max',
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['upstream', 'backend'],
        registers,
        aggregator,
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
    backendGauge('spillway_backend_in_flight', 'Requests in flight to the backend.', (view) => view.inFlight, 'sum');
    backendGauge(
      'spillway_backend_breaker_state',
      `Circuit breaker state: ${Object.entries(BREAKER_STATE_VALUE)
        .map(([state, value]) => `${value} ${state}`)
        .join(', ')}.`,
      (view) => view.breaker,
    );
    backendGauge('spillway_backend_healthy', '1 healthy, 0 unhealthy (active health checks).', (view) => view.healthy);
    backendGauge(
      'spillway_backend_admin_mode',
      'What an operator set through the admin API: 0 active, 1 drain (no new requests), 2 disable.',
      (view) => view.adminMode,
    );
    backendGauge('spillway_backend_queue_depth', 'Requests waiting for a concurrency slot of the backend.', (view) => view.queued, 'sum');

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
      ...decisionMetrics(registers),
      llmTokens: llmTokenMetrics(registers),
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Where a scrape's text comes from instead of this registry (a worker process: the sum over all workers). */
  source: (() => Promise<string>) | undefined;

  /** The exposition text for one scrape. */
  scrape(): Promise<string> {
    return this.source ? this.source() : this.registry.metrics();
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
