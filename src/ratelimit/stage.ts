// Stage 3 of the proxy handler: apply a route's rate limits to one request. Allowed requests get
// the rate-limit fields set on the response (they survive into the backend's answer) and go on,
// after their queue wait if any; the rest get a problem+json answer.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendProblem } from '../server/problems.js';
import type { ProxyObserver } from '../upstream/observer.js';
import type { LimitVerdict, RouteRateLimit } from './route-limit.js';

export function enforceRateLimit(limit: RouteRateLimit, req: IncomingMessage, res: ServerResponse, routeName: string, observer: ProxyObserver, next: () => void): void {
  limit.check(req, routeName, observer).then(
    (verdict) => applyVerdict(verdict, req, res, next),
    (error: unknown) => sendProblem(res, 'internal', `rate limit check failed: ${(error as Error).message}`),
  );
}

function applyVerdict(verdict: LimitVerdict, _req: IncomingMessage, res: ServerResponse, next: () => void): void {
  switch (verdict.kind) {
    case 'allow': {
      for (const name in verdict.headers) res.setHeader(name, verdict.headers[name]!);
      if (verdict.waitMs <= 0) {
        next();
        return;
      }
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
      return;
    }
    case 'limited': {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      sendProblem(res, 'client-rate-limited', `rate limit "${verdict.policy}" exceeded; retry in ${seconds}s`, {
        headers: { ...verdict.headers, 'retry-after': String(seconds), 'retry-after-ms': String(Math.max(1, verdict.retryAfterMs)) },
        extensions: { policy: verdict.policy, retryAfterMs: Math.max(1, verdict.retryAfterMs) },
      });
      return;
    }
    case 'missing-key':
      sendProblem(res, 'client-key-missing', `rate limit "${verdict.policy}" needs a client key this request does not carry`, {
        extensions: { policy: verdict.policy },
      });
      return;
    case 'unavailable': {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      sendProblem(res, 'rate-limiter-unavailable', `rate limit "${verdict.policy}" cannot be checked: its store is unavailable`, {
        headers: { 'retry-after': String(seconds) },
        extensions: { policy: verdict.policy },
      });
      return;
    }
  }
}
