// Stage 3 of the proxy handler: apply a route's rate limits to one request. Allowed requests get
// the rate-limit fields set on the response (they survive into the backend's answer) and go on,
// after their queue wait if any; the rest get a problem+json answer (refusal.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { addResponseField } from '../exchange/gateway-response.js';
import { sendProblem } from '../core/problems.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import { refusalFor } from './limit-refusal.js';
import type { LimitVerdict, RouteRateLimit } from '../ratelimit/route-limit.js';

export function enforceRateLimit(limit: RouteRateLimit, req: IncomingMessage, res: ServerResponse, routeName: string, observer: ProxyObserver, next: () => void): void {
  limit.check(req, routeName, observer).then(
    (verdict) => applyVerdict(verdict, res, next),
    (error: unknown) => sendProblem(res, 'internal', `rate limit check failed: ${(error as Error).message}`),
  );
}

function applyVerdict(verdict: LimitVerdict, res: ServerResponse, next: () => void): void {
  if (verdict.kind !== 'allow') {
    const { code, detail, options } = refusalFor(verdict);
    sendProblem(res, code, detail, options);
    return;
  }
  // The client may have left while Redis answered: do not call a backend for nobody.
  if (res.destroyed) {
    verdict.refund();
    return;
  }
  for (const name in verdict.headers) addResponseField(res, name, verdict.headers[name]!);
  if (verdict.waitMs <= 0) {
    next();
    return;
  }
  // Queue mode: hold the request; a client that leaves meanwhile gives its tokens back.
  let gone = false;
  const onClose = () => {
    gone = true;
  };
  res.once('close', onClose);
  setTimeout(() => {
    res.off('close', onClose);
    if (gone || res.destroyed) verdict.refund();
    else next();
  }, verdict.waitMs);
}
