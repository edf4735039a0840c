// The event vocabulary: what the request path reports as it decides. Telemetry (metrics, logs,
// traces) implements it; the request path never imports telemetry code. The subjects of an event
// (upstream, backend, route) are type parameters so this file needs nothing above it: the
// snapshot layer names the concrete types (snapshot/observer.ts).

export type AttemptOutcome = 'ok' | 'throttled' | 'error' | 'timeout' | 'breaker_open' | 'skipped_cooling' | 'aborted';
export type BreakerState = 'closed' | 'open' | 'half-open';
export type WebSocketCloseReason = 'closed' | 'idle' | 'shutdown' | 'error';
/** error: the store could not decide (onRedisError open/closed); missing-key: no client key (401). */
export type HoldOutcome = 'released' | 'expired' | 'queue-full' | 'removed' | 'shutdown';
/** Which client-side limit of the listener (listen.timeouts) ended a request. */
export type ClientTimeout = 'requestHeaders' | 'requestBodyIdle' | 'requestBody';
/** Why the listener refused a client without routing it: framing errors and HTTP/2 abuse. */
export type ClientProtocolError = 'bad-request' | 'headers-too-large' | 'http2-rapid-reset' | 'http2-reset-before-start';
/** What the cache did for one request of a cached route (hit: fresh; stale: stale-while-revalidate or stale-if-error). */
export type CacheResult = 'hit' | 'miss' | 'stale' | 'collapsed' | 'revalidated' | 'bypass';
export type LimiterResult = 'allowed' | 'limited' | 'queued' | 'error' | 'missing-key';

/** A backend told to rest: until when, and which header (or "default") said so. */
export interface CooldownDecision {
  /** Epoch ms until which the backend gets nothing. */
  until: number;
  delayMs: number;
  /** Header the delay came from, or "default" when none was usable. */
  source: string;
  value: string;
}

/** What one LLM answer used, as the request log and the token metrics see it. */
export interface TokenUse {
  readonly model: string | undefined;
  /** A short hash of the client's rate-limit identity (never the key itself); undefined without one. */
  readonly client: string | undefined;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** usage: the backend's count; counted: the gateway's (a stream without usage); estimate: neither was possible. */
  readonly source: 'usage' | 'counted' | 'estimate' | 'none';
}

export interface MirrorComparison {
  statusEqual: boolean;
  /** undefined when bodies were not compared */
  bodyEqual: boolean | undefined;
  primaryStatus: number;
  shadowStatus: number;
  primaryMs: number;
  shadowMs: number;
}

/** What the client limiter reports: the part of the vocabulary that needs no upstream or route. */
export interface LimiterEvents {
  limiterDecision(policy: string, result: LimiterResult): void;
  limiterDegraded(degraded: boolean, reason: string): void;
  /** In-process buckets were evicted to stay under limits.maxMemoryBuckets (memory: `store: memory` policies; local: the Redis fallback). */
  limiterEvicted(store: 'memory' | 'local', count: number): void;
}

export interface ProxyEvents<Upstream, Backend, Route> extends LimiterEvents {
  // core
  /** A backend entered (or extended) a cooldown. `extended` is false when the end did not move. */
  cooldown(upstream: Upstream, backend: Backend, decision: CooldownDecision, extended: boolean): void;
  /** One attempt on one backend got its status line (or failed before it). status 0 = no response. */
  attempt(upstream: Upstream, backend: Backend, outcome: AttemptOutcome, status: number, durationMs: number): void;
  /** The gateway answered 429 itself because no backend of the pool was ready. */
  poolExhausted(route: Route, retryAfterMs: number, upstream?: Upstream): void;
  /** A backend's TLS handshake or certificate check failed (unknown CA, expired, wrong name). */
  tlsError(upstream: Upstream, backend: Backend, code: string, reason: string): void;
  /** A WebSocket tunnel to a backend opened (after its 101). */
  websocketOpened(upstream: Upstream, backend: Backend): void;
  /** A WebSocket tunnel ended: either side closed, idle timeout, gateway shutdown, or a socket error. */
  websocketClosed(upstream: Upstream, backend: Backend, reason: WebSocketCloseReason, durationMs: number): void;
  /** A backend's throttle answer (429, or 503 with a hint) went to the client: no failover was possible. */
  throttlePassedThrough(upstream: Upstream, backend: Backend, status: number): void;
  /** An LLM answer ended (routes with a token policy): tokens in (prompt) and out (completion). */
  llmTokens(route: Route, upstream: Upstream | undefined, backend: Backend | undefined, use: TokenUse): void;
  /** A client request finished. */
  request(route: Route | undefined, method: string, status: number, durationMs: number, attempts: number): void;

  // resilience
  breakerStateChange(upstream: Upstream, backend: Backend, state: BreakerState): void;
  healthChange(upstream: Upstream, backend: Backend, healthy: boolean): void;
  retry(upstream: Upstream, backend: Backend, reason: string): void;
  concurrencyRejected(upstream: Upstream, backend: Backend | undefined, reason: 'queue-full' | 'wait-expired'): void;
  /** A request is held until a cooling backend is ready (throttle.hold). */
  held(upstream: Upstream): void;
  /** A held request left the hold: released to the pool, or answered at once (expired, queue full, removed, shutdown). */
  holdEnded(upstream: Upstream, outcome: HoldOutcome, waitedMs: number): void;

  // routing
  configReload(result: 'ok' | 'rejected', detail: string): void;
  mirrorCompared(route: Route, comparison: MirrorComparison): void;

  // listener
  /** A client was too slow (listen.timeouts): answered 408 and disconnected. */
  clientTimeout(kind: ClientTimeout): void;
  /** A client request was refused before routing (unparsable, too large) or an HTTP/2 stream or connection was cut. */
  clientProtocolError(reason: ClientProtocolError): void;

  // fan-out
  aggregatePart(route: Route, part: string, outcome: 'ok' | 'error' | 'timeout', durationMs: number): void;
  aggregateResponse(route: Route, partial: boolean, status: number): void;

  // cache
  /** A request of a cached route was answered: `bytes` of body came from the cache (0 when it did not). */
  cacheLookup(route: Route, result: CacheResult, bytes: number): void;
  /** An answer went into the cache store. */
  cacheStored(route: Route, bytes: number): void;
}
