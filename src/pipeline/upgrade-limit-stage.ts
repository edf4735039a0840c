// Stage 3 for WebSocket handshakes: the route's rate limits count each handshake as one request.
// There is no ServerResponse on an upgrade, so refusals are written through the socket's sink.

import type { IncomingMessage } from 'node:http';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { ResponseSink } from '../exchange/sink.js';
import { refusalFor } from './limit-refusal.js';
import type { LimitVerdict, RouteRateLimit } from '../ratelimit/route-limit.js';

export function enforceUpgradeRateLimit(limit: RouteRateLimit, req: IncomingMessage, sink: ResponseSink, routeName: string, observer: ProxyObserver, next: () => void): void {
  limit.check(req, routeName, observer).then(
    (verdict) => applyVerdict(verdict, sink, next),
    (error: unknown) => sink.problem('internal', `rate limit check failed: ${(error as Error).message}`),
  );
}

function applyVerdict(verdict: LimitVerdict, sink: ResponseSink, next: () => void): void {
  if (verdict.kind !== 'allow') {
    const { code, detail, options } = refusalFor(verdict);
    sink.problem(code, detail, options);
    return;
  }
  if (verdict.waitMs <= 0) {
    next();
    return;
  }
  let gone = false;
  sink.onGone(() => {
    gone = true;
  });
  setTimeout(() => {
    if (gone) verdict.refund();
    else next();
  }, verdict.waitMs);
}
