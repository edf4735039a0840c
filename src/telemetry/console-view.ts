// What the console shows, as sent to the browser over Server-Sent Events and read by
// `spillway status`: one JSON document per sample (every second while a client watches).

import type { BackendStateName } from './backend-view.js';

export interface ConsoleBackendView {
  /** The configured name, else the URL. */
  label: string;
  url: string;
  priority: number;
  weight: number;
  state: BackendStateName;
  /** Epoch ms the cooldown ends (the page counts down to it); null when not cooling. */
  cooldownUntil: number | null;
  /** Which header (or "default") set the current cooldown. */
  cooldownSource: string | null;
  inFlight: number;
  queued: number;
  /** Attempts per second over the rate window; null until two samples exist. */
  reqPerSec: number | null;
  /** Share (0..1) of the upstream's attempts in the last sample interval; null when there were none. */
  share: number | null;
  /** Counts over the last `windowSec` seconds (at most a minute). */
  lastMinute: { ok: number; throttled: number; failed: number };
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface ConsoleUpstreamView {
  name: string;
  balance: string;
  backends: ConsoleBackendView[];
  /** Share of traffic per backend over time: t in epoch seconds, shares[i][j] in percent (null: no traffic). */
  chart: { t: number[]; shares: Array<Array<number | null>> };
}

export interface ConsoleRouteView {
  name: string;
  action: 'upstream' | 'split' | 'respond' | 'aggregate';
  /** Upstream name(s), or the static status of a respond rule. */
  target: string;
  requests: number;
  hitsPerSec: number | null;
}

export interface ConsoleLimitView {
  policies: Array<{ name: string; store: 'memory' | 'redis'; refusedPerSec: number | null; decisionsPerSec: number | null }>;
  /** The memory store's busiest client buckets: a salted hash of the key, never the key itself. */
  busiest: Array<{ policy: string; client: string; fullInSec: number }>;
}

export interface ConsoleView {
  /** Server time (epoch ms) of this view: the page corrects its clock by it for countdowns. */
  now: number;
  intervalMs: number;
  /** Seconds the "last minute" counts cover (less than 60 right after the first client connected). */
  windowSec: number;
  config: { file: string; loadedAt: string };
  upstreams: ConsoleUpstreamView[];
  routes: ConsoleRouteView[];
  limits: ConsoleLimitView;
}
