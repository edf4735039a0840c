// What the request path and the gateway see of tracing: a tracer that opens a server span per
// request. The OpenTelemetry implementation (otel-tracer.ts) is loaded only when tracing is on.

import type { IncomingMessage } from 'node:http';
import type { RequestTrace } from '../exchange/request-scope.js';
import type { CompiledRoute } from '../snapshot/snapshot.js';

/** The server span of one request; opens client spans for its attempts. */
export interface ServerTrace extends RequestTrace {
  finish(route: CompiledRoute | undefined, status: number, attempts: number, aborted: boolean): void;
}

/** Starts a server span per request (continuing an incoming W3C trace). */
export interface RequestTracer {
  start(req: IncomingMessage, requestId: string): ServerTrace;
}

export interface Tracing {
  tracer: RequestTracer;
  /** Flushes pending spans and stops the SDK. */
  shutdown(): Promise<void>;
}
