// The backend-state bus: what one gateway learns about a backend (a cooldown, a breaker opening,
// a health-check result, an operator's drain/disable) reaches its peers — other replicas through
// Redis, other worker processes through the cluster primary. Transports never make a request
// wait: publishing is fire-and-forget, and a peer's news is merged when it arrives (the later
// cooldown end wins; durations, not clock times, cross the wire, so clock skew between hosts
// does not move a cooldown).

import type { AdminMode, BackendState, BackendStateListener, BackendStateRegistry } from './backend-state.js';

export type BusMessage =
  /** A cooldown: `ms` left when it was sent. */
  | { readonly t: 'cool'; readonly k: string; readonly ms: number; readonly src: string; readonly val: string }
  /** A breaker opened (for `ms`). */
  | { readonly t: 'open'; readonly k: string; readonly ms: number }
  /** A health probe's result, from the peer that holds the probe lease. */
  | { readonly t: 'probe'; readonly k: string; readonly ok: boolean; readonly err?: string | undefined }
  /** An operator's mode. */
  | { readonly t: 'mode'; readonly k: string; readonly mode: AdminMode }
  /** The backend said its window is spent (remaining 0): skip it until it says otherwise or ~1 s passed. */
  | { readonly t: 'spent'; readonly k: string };

export interface BusTransport {
  readonly name: string;
  /** Sends to every peer; never throws, never waits for the peers. */
  publish(message: BusMessage): void;
  /** Whether this gateway runs the probe of `key` now; rejects when the transport cannot tell. */
  lease?(key: string, intervalMs: number): Promise<boolean>;
  /** A backend appeared here (start, reload): read what peers know about it. */
  created?(state: BackendState): void;
  /** Resolves once connected and synchronised, or after `timeoutMs`. */
  ready?(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export const MODES: readonly AdminMode[] = ['active', 'drain', 'disable'];

export class BackendBus implements BackendStateListener {
  readonly #transports = new Set<BusTransport>();
  /** Messages sent and applied, by kind (for tests, bench and metrics). */
  readonly sent = { cool: 0, open: 0, probe: 0, mode: 0, spent: 0 };
  readonly applied = { cool: 0, open: 0, probe: 0, mode: 0, spent: 0 };

  constructor(readonly states: BackendStateRegistry) {
    states.listener = this;
    states.probeGate = (state, intervalMs) => this.#mayProbe(state, intervalMs);
    states.onCreate = (state) => {
      for (const transport of this.#transports) transport.created?.(state);
    };
  }

  add(transport: BusTransport): void {
    this.#transports.add(transport);
    for (const state of this.states.values()) transport.created?.(state);
  }

  async remove(transport: BusTransport): Promise<void> {
    this.#transports.delete(transport);
    await transport.close().catch(() => undefined);
  }

  get transports(): readonly BusTransport[] {
    return [...this.#transports];
  }

  cooldown(state: BackendState, remainingMs: number, source: string, value: string): void {
    this.#publish({ t: 'cool', k: state.sharedKey, ms: Math.round(remainingMs), src: source, val: value });
  }

  breakerOpened(state: BackendState, remainingMs: number): void {
    this.#publish({ t: 'open', k: state.sharedKey, ms: Math.round(remainingMs) });
  }

  probed(state: BackendState, passed: boolean, error: string | undefined): void {
    this.#publish({ t: 'probe', k: state.sharedKey, ok: passed, ...(error === undefined ? {} : { err: error.slice(0, 200) }) });
  }

  modeChanged(state: BackendState, mode: AdminMode): void {
    this.#publish({ t: 'mode', k: state.sharedKey, mode });
  }

  capacitySpent(state: BackendState): void {
    this.#publish({ t: 'spent', k: state.sharedKey });
  }

  /** Merges a peer's message into the local picture (never re-published: peers hear each other directly). */
  apply(message: BusMessage, now = Date.now()): boolean {
    const state = this.states.byShared(message.k);
    if (!state) return false;
    this.applied[message.t]++;
    switch (message.t) {
      case 'cool':
        return state.coolDownFromPeer(message.ms, message.src, message.val, now);
      case 'open':
        if (!state.breaker || state.breaker.state === 'open') return false;
        state.breaker.openFromPeer();
        return true;
      case 'probe':
        if (!state.health) return false;
        state.health.recordFromPeer(message.ok, message.err);
        return true;
      case 'mode':
        return MODES.includes(message.mode) && state.setMode(message.mode, false);
      case 'spent':
        state.capacity.spentFromPeer(now);
        return true;
    }
  }

  /** Waits (bounded) for every transport to connect and read the current picture. */
  async ready(timeoutMs = 1_000): Promise<void> {
    await Promise.all([...this.#transports].map((transport) => transport.ready?.(timeoutMs)));
  }

  async close(): Promise<void> {
    const transports = [...this.#transports];
    this.#transports.clear();
    await Promise.all(transports.map((transport) => transport.close().catch(() => undefined)));
  }

  #publish(message: BusMessage): void {
    this.sent[message.t]++;
    for (const transport of this.#transports) transport.publish(message);
  }

  /**
   * The widest transport that can answer decides (Redis spans every replica, IPC only this host's
   * workers); none (or all failing): probe here.
   */
  async #mayProbe(state: BackendState, intervalMs: number): Promise<boolean> {
    const widestFirst = [...this.#transports].sort((a, b) => Number(b.name === 'redis') - Number(a.name === 'redis'));
    for (const transport of widestFirst) {
      if (!transport.lease) continue;
      try {
        return await transport.lease(state.sharedKey, intervalMs);
      } catch {
        // This transport cannot tell (Redis down or slow): try the next, else probe alone.
      }
    }
    return true;
  }
}

/** A message from a peer, checked: anything malformed is dropped, never applied. */
export function parseBusMessage(value: unknown): BusMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  if (typeof m.k !== 'string') return undefined;
  switch (m.t) {
    case 'cool':
      return typeof m.ms === 'number' && Number.isFinite(m.ms) && typeof m.src === 'string' && typeof m.val === 'string'
        ? { t: 'cool', k: m.k, ms: m.ms, src: m.src, val: m.val }
        : undefined;
    case 'open':
      return typeof m.ms === 'number' && Number.isFinite(m.ms) ? { t: 'open', k: m.k, ms: m.ms } : undefined;
    case 'probe':
      return typeof m.ok === 'boolean' ? { t: 'probe', k: m.k, ok: m.ok, ...(typeof m.err === 'string' ? { err: m.err } : {}) } : undefined;
    case 'mode':
      return typeof m.mode === 'string' && (MODES as readonly string[]).includes(m.mode)
        ? { t: 'mode', k: m.k, mode: m.mode as AdminMode }
        : undefined;
    case 'spent':
      return { t: 'spent', k: m.k };
    default:
      return undefined;
  }
}
