// The console's numbers: once a second, and only while at least one console client is connected,
// it reads the cumulative counters the gateway keeps anyway (BackendState, RouteStats) and the
// console tap's tallies, keeps the last few minutes of samples, and derives rates, last-minute
// counts, latency quantiles and each backend's share of its upstream's traffic from differences
// between samples. Nothing runs while nobody watches.

import type { Snapshot } from '../snapshot/snapshot.js';
import { backendStateName } from './backend-view.js';
import { type BucketLister, ConsoleLimits } from './console-limits.js';
import type { ConsoleTap, LimiterTally } from './console-tap.js';
import type { ConsoleRouteView, ConsoleUpstreamView, ConsoleView } from './console-view.js';
import type { DecisionEvent } from './event-buffer.js';
import { emptyHistogram, quantile, subtractHistogram } from './latency-histogram.js';

export interface ConsoleListener {
  view(view: ConsoleView): void;
  /** Decisions the sampler itself sees (traffic moving between priorities). */
  decision(event: DecisionEvent): void;
}

export interface ConsoleSamplerOptions {
  getSnapshot: () => Snapshot;
  tap: ConsoleTap;
  buckets?: BucketLister | undefined;
  intervalMs?: number;
  /** Samples kept (the chart's span); 181 at 1 s = three minutes. */
  history?: number;
  clock?: () => number;
}

interface BackendSample {
  requests: number;
  throttled: number;
  ok: number;
  failed: number;
  latency: number[];
}

interface Sample {
  at: number;
  backends: Map<string, BackendSample>;
  routes: Map<string, number>;
  limiter: Map<string, LimiterTally>;
}

export type { BucketLister };

const WINDOW_MS = 60_000;
/** Rates average over this many sample intervals (steadier than one second). */
const RATE_SPAN = 5;

export class ConsoleSampler {
  readonly intervalMs: number;
  readonly #options: ConsoleSamplerOptions;
  readonly #history: number;
  readonly #clock: () => number;
  readonly #listeners = new Set<ConsoleListener>();
  readonly #samples: Sample[] = [];
  readonly #serving = new Map<string, number>();
  /** The rate-limit panel (console-limits.ts). */
  readonly #limits: ConsoleLimits;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ConsoleSamplerOptions) {
    this.#options = options;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.#history = options.history ?? 181;
    this.#clock = options.clock ?? Date.now;
    this.#limits = new ConsoleLimits(options.buckets);
  }

  get watching(): number {
    return this.#listeners.size;
  }

  /** Starts sampling with the first listener, stops with the last one; returns the unsubscribe. */
  subscribe(listener: ConsoleListener): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      if (!this.#listeners.delete(listener)) return;
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Takes one sample and tells every listener (the timer calls it; tests call it directly). */
  tick(): void {
    this.#sample();
    for (const event of this.#failovers()) for (const listener of this.#listeners) listener.decision(event);
    const view = this.view();
    for (const listener of this.#listeners) listener.view(view);
  }

  #start(): void {
    this.#options.tap.activate();
    this.#sample();
    this.#timer = setInterval(() => this.tick(), this.intervalMs);
    this.#timer.unref();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#options.tap.deactivate();
    this.#samples.length = 0;
    this.#serving.clear();
  }

  #sample(): void {
    const { getSnapshot, tap } = this.#options;
    const snapshot = getSnapshot();
    const backends = new Map<string, BackendSample>();
    for (const upstream of snapshot.upstreams.values()) {
      for (const backend of upstream.backends) {
        const tally = tap.backend(backend.id);
        backends.set(backend.id, {
          requests: backend.state.requests,
          throttled: backend.state.throttled,
          ok: tally?.ok ?? 0,
          failed: tally?.failed ?? 0,
          latency: tally ? [...tally.latency] : emptyHistogram(),
        });
      }
    }
    const routes = new Map(snapshot.routes.map((route) => [route.name, route.stats.requests]));
    const limiter = new Map<string, LimiterTally>();
    for (const name of Object.keys(snapshot.config.rateLimits)) limiter.set(name, { ...(tap.limiter(name) ?? { decided: 0, refused: 0 }) });
    this.#samples.push({ at: this.#clock(), backends, routes, limiter });
    if (this.#samples.length > this.#history) this.#samples.shift();
  }

  /** The sample `back` intervals before the newest (or the oldest kept). */
  #before(back: number): Sample | undefined {
    const n = this.#samples.length;
    return n < 2 ? undefined : this.#samples[Math.max(0, n - 1 - back)];
  }

  #windowStart(latest: Sample): Sample {
    return this.#samples.find((sample) => sample.at >= latest.at - WINDOW_MS - this.intervalMs / 2) ?? latest;
  }

  /** Priority-level changes of each upstream's traffic since the previous sample. */
  #failovers(): DecisionEvent[] {
    const latest = this.#samples.at(-1);
    const previous = this.#before(1);
    if (!latest || !previous) return [];
    const events: DecisionEvent[] = [];
    for (const upstream of this.#options.getSnapshot().upstreams.values()) {
      let serving = Infinity;
      for (const backend of upstream.backends) {
        const delta = (latest.backends.get(backend.id)?.requests ?? 0) - (previous.backends.get(backend.id)?.requests ?? 0);
        if (delta > 0) serving = Math.min(serving, backend.priority);
      }
      if (!Number.isFinite(serving)) continue;
      const before = this.#serving.get(upstream.name);
      this.#serving.set(upstream.name, serving);
      if (before === undefined || before === serving) continue;
      events.push({
        time: new Date(latest.at).toISOString(),
        event: 'upstream.failover',
        msg: serving > before ? `traffic spilled from priority ${before} to ${serving}` : `traffic back on priority ${serving}`,
        upstream: upstream.name,
        from: before,
        to: serving,
      });
    }
    return events;
  }

  /** The console's view now: live state plus rates from the samples so far. */
  view(): ConsoleView {
    const snapshot = this.#options.getSnapshot();
    const now = this.#clock();
    const latest = this.#samples.at(-1);
    const windowStart = latest ? this.#windowStart(latest) : undefined;
    return {
      now,
      intervalMs: this.intervalMs,
      windowSec: latest && windowStart ? Math.round((latest.at - windowStart.at) / 1000) : 0,
      config: { file: snapshot.file, loadedAt: snapshot.loadedAt.toISOString() },
      upstreams: this.#upstreams(snapshot, now, windowStart),
      routes: this.#routes(snapshot),
      limits: this.#limits.view(snapshot, (pick) => this.#rate(pick)),
    };
  }

  #rate(pick: (sample: Sample) => number | undefined): number | null {
    const latest = this.#samples.at(-1);
    const base = this.#before(RATE_SPAN);
    if (!latest || !base || latest.at <= base.at) return null;
    const delta = (pick(latest) ?? 0) - (pick(base) ?? 0);
    return Math.round((delta / ((latest.at - base.at) / 1000)) * 10) / 10;
  }

  #upstreams(snapshot: Snapshot, now: number, windowStart: Sample | undefined): ConsoleUpstreamView[] {
    const latest = this.#samples.at(-1);
    const previous = this.#before(1);
    const views: ConsoleUpstreamView[] = [];
    for (const upstream of snapshot.upstreams.values()) {
      const backends = [...upstream.backends].sort((a, b) => a.priority - b.priority || a.index - b.index);
      const delta = (id: string, later: Sample | undefined, earlier: Sample | undefined) =>
        (later?.backends.get(id)?.requests ?? 0) - (earlier?.backends.get(id)?.requests ?? 0);
      const lastTotal = backends.reduce((sum, b) => sum + delta(b.id, latest, previous), 0);
      views.push({
        name: upstream.name,
        balance: upstream.balance,
        backends: backends.map((backend) => {
          const { state } = backend;
          const stateName = backendStateName(state, now);
          const end = latest?.backends.get(backend.id);
          const start = windowStart?.backends.get(backend.id);
          const latency = end ? subtractHistogram(end.latency, start?.latency) : emptyHistogram();
          return {
            label: backend.name ?? backend.url,
            url: backend.url,
            priority: backend.priority,
            weight: backend.weight,
            state: stateName,
            cooldownUntil: stateName === 'cooling' ? state.cooldownUntil : null,
            cooldownSource: stateName === 'cooling' ? (state.lastCooldown?.source ?? null) : null,
            inFlight: state.inFlight,
            queued: state.queued,
            reqPerSec: this.#rate((sample) => sample.backends.get(backend.id)?.requests),
            share: previous && lastTotal > 0 ? Math.round((delta(backend.id, latest, previous) / lastTotal) * 1000) / 1000 : null,
            lastMinute: {
              ok: (end?.ok ?? 0) - (start?.ok ?? 0),
              throttled: (end?.throttled ?? 0) - (start?.throttled ?? end?.throttled ?? 0),
              failed: (end?.failed ?? 0) - (start?.failed ?? 0),
            },
            p50Ms: quantile(latency, 0.5),
            p99Ms: quantile(latency, 0.99),
          };
        }),
        chart: this.#chart(backends.map((backend) => backend.id)),
      });
    }
    return views;
  }

  #chart(ids: readonly string[]): ConsoleUpstreamView['chart'] {
    const t: number[] = [];
    const shares: Array<Array<number | null>> = ids.map(() => []);
    for (let i = 1; i < this.#samples.length; i++) {
      const later = this.#samples[i]!;
      const earlier = this.#samples[i - 1]!;
      const deltas = ids.map((id) => (later.backends.get(id)?.requests ?? 0) - (earlier.backends.get(id)?.requests ?? 0));
      const total = deltas.reduce((sum, d) => sum + Math.max(0, d), 0);
      t.push(Math.round(later.at / 1000));
      for (const [j, d] of deltas.entries()) shares[j]!.push(total > 0 ? Math.round((Math.max(0, d) / total) * 1000) / 10 : null);
    }
    return { t, shares };
  }

  #routes(snapshot: Snapshot): ConsoleRouteView[] {
    return snapshot.routes.map((route) => {
      const { action } = route;
      const target =
        action.kind === 'upstream'
          ? action.upstream.name
          : action.kind === 'split'
            ? action.split.choices.map((choice) => `${choice.name} ${choice.weight}`).join(' / ')
            : action.kind === 'aggregate'
              ? action.aggregate.parts.map((part) => part.upstream.name).join(' + ')
              : String(action.respond.status);
      return {
        name: route.name,
        action: action.kind,
        target,
        requests: route.stats.requests,
        hitsPerSec: this.#rate((sample) => sample.routes.get(route.name)),
      };
    });
  }
}
