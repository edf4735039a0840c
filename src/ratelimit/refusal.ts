// What a refused client is told: problem type, detail, Retry-After and the rate-limit fields.
// The same for HTTP requests and WebSocket handshakes (pipeline/limit-stage.ts writes it).

import type { ProblemCode, ProblemOptions } from '../core/problems.js';
import type { LimitVerdict } from './route-limit.js';

/** How a refused request is answered: problem type, detail, Retry-After and the rate-limit fields. */
export interface Refusal {
  code: ProblemCode;
  detail: string;
  options: ProblemOptions;
}

export function refusalFor(verdict: Exclude<LimitVerdict, { kind: 'allow' }>): Refusal {
  switch (verdict.kind) {
    case 'limited': {
      const retryAfterMs = Math.max(1, verdict.retryAfterMs);
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      return {
        code: 'client-rate-limited',
        detail: `rate limit "${verdict.policy}" exceeded; retry in ${seconds}s`,
        options: {
          headers: { ...verdict.headers, 'retry-after': String(seconds), 'retry-after-ms': String(retryAfterMs) },
          extensions: { policy: verdict.policy, retryAfterMs },
        },
      };
    }
    case 'quota': {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      return {
        code: 'client-quota-exceeded',
        detail: `the quota of rate limit "${verdict.policy}" is spent for this period; it renews in ${seconds}s`,
        options: {
          headers: { ...verdict.headers, 'retry-after': String(seconds) },
          extensions: { policy: verdict.policy, retryAfterMs: verdict.retryAfterMs },
        },
      };
    }
    case 'missing-key':
      return {
        code: 'client-key-missing',
        detail: `rate limit "${verdict.policy}" needs a client key this request does not carry`,
        options: { extensions: { policy: verdict.policy } },
      };
    case 'repeated-key':
      return {
        code: 'bad-request',
        detail: `the ${verdict.header} header is sent more than once; send one key`,
        options: { extensions: { policy: verdict.policy } },
      };
    case 'unavailable':
      return {
        code: 'rate-limiter-unavailable',
        detail: `rate limit "${verdict.policy}" cannot be checked: its store is unavailable`,
        options: {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))) },
          extensions: { policy: verdict.policy },
        },
      };
  }
}
