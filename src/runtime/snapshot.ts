// The immutable runtime snapshot compiled from a validated config. Requests hold the snapshot
// they started with; a reload swaps in a new one. Live state is looked up by id from registries.

import type { Dispatcher } from 'undici';
import type { GatewayConfig } from '../config/schema/index.js';
import type { BackendState } from '../upstream/backend-state.js';
import type { BalanceMode, RoundRobinCursor, SelectableBackend } from '../upstream/select.js';
import type { RouteMatcher } from '../routing/route-table.js';

export interface CompiledBackend extends SelectableBackend {
  readonly id: string;
  readonly url: string;
  /** Path prefix from the backend URL ("" when none), prepended to every forwarded path. */
  readonly basePath: string;
  /** host[:port] of the backend URL, sent as Host when hostHeader is "backend". */
  readonly authority: string;
  readonly dispatcher: Dispatcher;
  readonly dispatcherKey: string;
  readonly state: BackendState;
}

export interface ThrottlePolicy {
  readonly statuses: ReadonlySet<number>;
  readonly defaultCooldown: number;
  readonly minCooldown: number;
  readonly maxCooldown: number;
}

export interface CompiledUpstream {
  readonly name: string;
  readonly balance: BalanceMode;
  readonly backends: readonly CompiledBackend[];
  readonly throttle: ThrottlePolicy;
  readonly maxAttempts: number;
  readonly replayBuffer: number;
  readonly timeouts: { readonly connect: number; readonly headers: number; readonly idle: number };
  /** "backend" | "preserve" | a literal Host value. */
  readonly hostHeader: string;
  readonly cursor: RoundRobinCursor;
}

export interface CompiledRoute {
  readonly index: number;
  readonly name: string;
  readonly matcher: RouteMatcher;
  readonly upstream: CompiledUpstream;
  readonly rewrite: ((path: string) => string) | undefined;
}

export interface Snapshot {
  readonly config: GatewayConfig;
  readonly file: string;
  readonly loadedAt: Date;
  readonly routes: readonly CompiledRoute[];
  readonly upstreams: ReadonlyMap<string, CompiledUpstream>;
  readonly limits: { readonly maxRequestBody: number; readonly maxHeaderSize: number };
}
