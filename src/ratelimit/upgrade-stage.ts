// Stage 3 for WebSocket handshakes: the route's rate limits count each handshake as one request.
// There is no ServerResponse on an upgrade, so refusals are written through the socket's sink.

import type { IncomingMessage } from 'node:http';
import type { ProxyObserver } from '../upstream/observer.js';
import type { ResponseSink } from '../upstream/sink.js';
import type { LimitVerdict, RouteRateLimit } from './route-limit.js';

export function enforceUpgradeRateLimit(limit: RouteRateLimit, req: IncomingMessage, sink: ResponseSink, routeName: string, observer: ProxyObserver, next: () => void): void {
  limit.check(req, routeName, observer).then(
    (verdict) => applyVerdict(verdict, sink, next),
    (error: unknown) => sink.problem('internal', `rate limit check failed: ${(error as Error).message}`),
  );
}

function applyVerdict(verdict: LimitVerdict, sink: ResponseSink, next: () => void): void {
  switch (verdict.kind) {
    case 'allow': {
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
      return;
    }
    case 'limited': {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      sink.problem('client-rate-limited', `rate limit "${verdict.policy}" exceeded; retry in ${seconds}s`, {
        headers: { ...verdict.headers, 'retry-after': String(seconds), 'retry-after-ms': String(Math.max(1, verdict.retryAfterMs)) },
        extensions: { policy: verdict.policy, retryAfterMs: Math.max(1, verdict.retryAfterMs) },
      });
      return;
    }
    case 'missing-key':
      sink.problem('client-key-missing', `rate limit "${verdict.policy}" needs a client key this request does not carry`, { extensions: { policy: verdict.policy } });
      return;
    case 'unavailable': {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      sink.problem('rate-limiter-unavailable', `rate limit "${verdict.policy}" cannot be checked: its store is unavailable`, {
        headers: { 'retry-after': String(seconds) },
        extensions: { policy: verdict.policy },
      });
      return;
    }
  }
}
