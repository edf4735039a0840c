// Stage 3: a route's client rate limits, for HTTP requests and WebSocket handshakes alike (a
// handshake counts as one request). Allowed requests carry the rate-limit fields into their
// answer and go on, after their queue wait if any; the rest get a problem+json answer.
// A client that leaves while the limiter decides, or while it waits, gives its tokens back.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendProblem, type ProblemCode } from '../core/problems.js';
import { refusalFor } from '../ratelimit/refusal.js';
import type { LimitContext, LimitVerdict, Reservation, RouteRateLimit } from '../ratelimit/route-limit.js';
import { addResponseField } from '../exchange/gateway-response.js';
import type { ProblemOptions, ResponseSink } from '../exchange/sink.js';
import type { ProxyObserver } from '../snapshot/observer.js';

/** How the stage answers one kind of client; one static port per kind, nothing per request. */
export interface ClientPort<Client> {
  problem(client: Client, code: ProblemCode, detail: string, options?: ProblemOptions): void;
  isGone(client: Client): boolean;
  onGone(client: Client, listener: () => void): void;
  /** The rate-limit fields of an allowed request, for its eventual answer. */
  addFields(client: Client, fields: Readonly<Record<string, string>>): void;
}

/** A plain HTTP request: answers and fields go on its ServerResponse. */
export const responsePort: ClientPort<ServerResponse> = {
  problem: (res, code, detail, options) => sendProblem(res, code, detail, options),
  isGone: (res) => res.destroyed,
  onGone: (res, listener) => res.once('close', listener),
  addFields(res, fields) {
    for (const name in fields) addResponseField(res, name, fields[name]!);
  },
};

/** A WebSocket handshake: no ServerResponse, refusals go through the socket's sink. */
export const upgradePort: ClientPort<ResponseSink> = {
  problem: (sink, code, detail, options) => sink.problem(code, detail, options),
  isGone: () => false,
  onGone: (sink, listener) => sink.onGone(listener),
  addFields() {},
};

export function enforceRateLimit<Client>(
  limit: RouteRateLimit,
  req: IncomingMessage,
  client: Client,
  port: ClientPort<Client>,
  routeName: string,
  observer: ProxyObserver,
  next: (reservation: Reservation) => void,
  context?: string | LimitContext,
): void {
  limit.check(req, routeName, observer, context).then(
    (verdict) => applyVerdict(verdict, client, port, next),
    (error: unknown) => port.problem(client, 'internal', `rate limit check failed: ${(error as Error).message}`),
  );
}

function applyVerdict<Client>(
  verdict: LimitVerdict,
  client: Client,
  port: ClientPort<Client>,
  next: (reservation: Reservation) => void,
): void {
  if (verdict.kind !== 'allow') {
    const { code, detail, options } = refusalFor(verdict);
    port.problem(client, code, detail, options);
    return;
  }
  // The client may have left while Redis answered: do not call a backend for nobody.
  if (port.isGone(client)) {
    verdict.refund();
    return;
  }
  port.addFields(client, verdict.headers);
  if (verdict.waitMs <= 0) {
    next(verdict.reservation);
    return;
  }
  // Queue mode: hold the request; a client that leaves meanwhile gives its tokens back.
  let gone = false;
  port.onGone(client, () => {
    gone = true;
  });
  setTimeout(() => {
    if (gone || port.isGone(client)) verdict.refund();
    else next(verdict.reservation);
  }, verdict.waitMs);
}
