// Per-rule counters (the migration view in GET /admin/routes). They live in a registry keyed by
// route name, like backend state, so a reload does not reset them for rules that stay.

export interface MirrorStats {
  /** Copies sent to the shadow. */
  sent: number;
  /** Not sent: the shadow's concurrency cap was reached, or the body was streamed. */
  skipped: number;
  inFlight: number;
  /** Pairs compared (both sides answered). */
  compared: number;
  statusEqual: number;
  bodyCompared: number;
  bodyEqual: number;
  /** The shadow failed (no response, or a gateway error for it). */
  shadowErrors: number;
}

export class RouteStats {
  requests = 0;
  readonly byUpstream = new Map<string, number>();
  responded = 0;
  readonly mirror: MirrorStats = {
    sent: 0,
    skipped: 0,
    inFlight: 0,
    compared: 0,
    statusEqual: 0,
    bodyCompared: 0,
    bodyEqual: 0,
    shadowErrors: 0,
  };

  countUpstream(name: string): void {
    this.byUpstream.set(name, (this.byUpstream.get(name) ?? 0) + 1);
  }
}

export class RouteStatsRegistry {
  readonly #stats = new Map<string, RouteStats>();

  get(name: string): RouteStats {
    let stats = this.#stats.get(name);
    if (!stats) {
      stats = new RouteStats();
      this.#stats.set(name, stats);
    }
    return stats;
  }

  retain(names: ReadonlySet<string>): void {
    for (const name of this.#stats.keys()) if (!names.has(name)) this.#stats.delete(name);
  }
}
