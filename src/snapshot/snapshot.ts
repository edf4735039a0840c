// The immutable runtime snapshot compiled from a validated config. Requests hold the snapshot
// they started with; a reload swaps in a new one. Live state is looked up by id from registries.

import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import type { IdempotencyStore } from '../idempotency/store.js';
import type { GatewayConfig } from '../config/schema/index.js';
import type { BackendState } from '../state/backend-state.js';
import type { BackendTls } from '../state/backend-tls.js';
import type { HeaderEdit } from '../routing/header-edit.js';
import type { BalanceMode, RoundRobinCursor, SelectableBackend } from '../balance/select.js';
import type { CompiledMatch } from '../routing/matchers.js';
import type { CompiledRespond } from '../routing/respond.js';
import type { HeaderOps, PathRewrite } from '../routing/rewrite.js';
import type { RouteStats } from '../state/route-stats.js';
import type { CompiledSplit } from '../routing/split.js';
import type { CompiledAggregate } from '../routing/aggregate/compile.js';
import type { UpstreamResilience } from '../resilience/policy.js';
import type { ThrottlePolicy } from '../resilience/cooldown.js';
import type { HoldPolicy, HoldQueue } from '../resilience/hold.js';
import type { RouteRateLimit } from '../ratelimit/route-limit.js';
import type { RouteAuth } from '../auth/route-auth.js';
import type { PathOptions } from '../routing/normalise.js';
import type { ClientIpResolver } from '../core/client-ip.js';
import type { BlockList } from 'node:net';
import type { CacheConfig } from '../config/schema/cache.js';
import type { CacheStore, CollapseLocks } from '../state/cache-registry.js';

/** An LLM backend's own model name (OpenAI-style) or Azure deployment. */
export interface LlmBackend {
  readonly model: string | undefined;
  readonly deployment: string | undefined;
  readonly apiVersion: string;
}

export interface CompiledBackend extends SelectableBackend {
  readonly id: string;
  readonly url: string;
  /** The configured name, if any (the url otherwise identifies the backend). */
  readonly name: string | undefined;
  /** Path prefix from the backend URL ("" when none), prepended to every forwarded path. */
  readonly basePath: string;
  /** host[:port] of the backend URL, sent as Host when hostHeader is "backend". */
  readonly authority: string;
  readonly dispatcher: Dispatcher;
  readonly dispatcherKey: string;
  readonly state: BackendState;
  /** Header edits for this backend (credentials); undefined when none. */
  readonly headerEdit: HeaderEdit | undefined;
  /** TLS settings for https backends; undefined for http. */
  readonly tls: BackendTls | undefined;
  /** Model / Azure deployment rewriting; undefined when the backend sets neither. */
  readonly llm: LlmBackend | undefined;
}

export interface CompiledUpstream {
  readonly name: string;
  readonly balance: BalanceMode;
  readonly backends: readonly CompiledBackend[];
  readonly throttle: ThrottlePolicy;
  readonly maxAttempts: number;
  readonly replayBuffer: number;
  readonly timeouts: { readonly connect: number; readonly headers: number; readonly idle: number; readonly websocketIdle: number };
  /** "backend" | "preserve" | a literal Host value. */
  readonly hostHeader: string;
  readonly cursor: RoundRobinCursor;
  /** Breaker, health checks, retries, concurrency; each undefined when not configured. */
  readonly resilience: UpstreamResilience;
  /** Hold until ready (throttle.hold); undefined when off. The queue is kept across reloads by upstream name. */
  readonly hold: { readonly policy: HoldPolicy; readonly queue: HoldQueue } | undefined;
}

export type MirrorCompare = 'none' | 'status' | 'body';

export interface CompiledMirror {
  readonly upstream: CompiledUpstream;
  /** 0..1 */
  readonly fraction: number;
  readonly compare: MirrorCompare;
  readonly maxConcurrent: number;
  readonly maxBody: number;
  /** ms after which an unanswered shadow request is abandoned */
  readonly timeout: number;
}

/** What a matched route does: exactly one action. */
export type RouteAction =
  | { readonly kind: 'upstream'; readonly upstream: CompiledUpstream }
  | { readonly kind: 'split'; readonly split: CompiledSplit<CompiledUpstream> }
  | { readonly kind: 'respond'; readonly respond: CompiledRespond }
  | { readonly kind: 'aggregate'; readonly aggregate: CompiledAggregate<CompiledUpstream> };

export interface CompiledRoute {
  readonly index: number;
  readonly name: string;
  readonly match: CompiledMatch;
  readonly action: RouteAction;
  /** The upstream of an `upstream` action (undefined for the other actions). */
  readonly upstream: CompiledUpstream | undefined;
  /** Forwarded path (no query) from the normalised path and the match's params. */
  readonly rewrite: PathRewrite | undefined;
  readonly requestHeaders: HeaderOps | undefined;
  readonly responseHeaders: HeaderOps | undefined;
  readonly mirror: CompiledMirror | undefined;
  /** Live counters, kept across reloads by route name. */
  readonly stats: RouteStats;
  /** Lower-case client header names dropped before forwarding (client credentials); undefined when none. */
  readonly removeHeaders: readonly string[] | undefined;
  /** What to answer when no backend of the upstream can take the request. */
  readonly fallback: RouteFallback | undefined;
  /** Client rate limits (absent: none, and no per-request cost). */
  readonly rateLimit?: RouteRateLimit | undefined;
  /** Client authentication (absent: anyone may use the route). */
  readonly auth?: RouteAuth | undefined;
  /** The route's shared HTTP cache (absent: none). */
  readonly cache?: CompiledCache | undefined;
  /** Idempotency-Key handling (absent: none). */
  readonly idempotency?: RouteIdempotency | undefined;
}

export interface CompiledCache {
  readonly config: CacheConfig;
  readonly store: CacheStore;
  /** In-flight misses of this process (collapsed forwarding). */
  readonly locks: CollapseLocks;
  /** keyBy entries (header names and/or "body"). */
  readonly keyBy: readonly string[];
  /** keyBy holds "body": POST answers are cached by their JSON body. */
  readonly byBody: boolean;
}

export interface RouteIdempotency {
  /** Lower-case header name. */
  readonly header: string;
  /** A keyed non-idempotent request may be replayed after a reset (the backends deduplicate). */
  readonly retryOnReset: boolean;
  readonly methods: ReadonlySet<string>;
  /** ms a completed answer is kept. */
  readonly ttl: number;
  /** Answers with a larger body are not stored. */
  readonly maxBody: number;
  readonly onStoreError: 'closed' | 'open';
  readonly store: IdempotencyStore;
  /** Who a key belongs to (scopeBy); undefined when keys are scoped by method and path only. */
  readonly scope: ((req: IncomingMessage, route: string) => string | undefined | Promise<string | undefined>) | undefined;
}

/** A route's answer when its upstream cannot serve: another upstream, or a fixed response. */
export type RouteFallback =
  | { readonly kind: 'upstream'; readonly upstream: CompiledUpstream }
  | { readonly kind: 'static'; readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly body: string };

export interface Snapshot {
  readonly config: GatewayConfig;
  readonly file: string;
  readonly loadedAt: Date;
  readonly routes: readonly CompiledRoute[];
  readonly upstreams: ReadonlyMap<string, CompiledUpstream>;
  readonly limits: { readonly maxRequestBody: number; readonly maxHeaderSize: number };
  /** How request paths are matched or refused (`paths`). */
  readonly paths: PathOptions;
  /** `listen.trustedProxies` (undefined: none): whose forwarding headers are believed. */
  readonly trustedProxies: BlockList | undefined;
  /** The client address, believing X-Forwarded-For only from `listen.trustedProxies`. */
  readonly clientIp: ClientIpResolver;
}
