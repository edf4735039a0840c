// Every error the gateway itself produces, in one place: application/problem+json (RFC 9457)
// with a stable `type` URI. docs/problems.md lists them for clients.

import type { ServerResponse } from 'node:http';

export const PROBLEM_TYPES = {
  'route-not-found': { status: 404, title: 'No route matches this request' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'bad-request': { status: 400, title: 'Bad request' },
  'ambiguous-path': { status: 400, title: 'The request path could be read more than one way' },
  'payload-too-large': { status: 413, title: 'Request body too large' },
  'headers-too-large': { status: 431, title: 'Request headers too large' },
  'request-timeout': { status: 408, title: 'The client took too long to send the request' },
  'all-backends-throttled': { status: 429, title: 'Every backend of the upstream is throttling' },
  'all-backends-unavailable': { status: 503, title: 'No backend of the upstream is available (breakers open or health checks failing)' },
  'concurrency-limit': { status: 503, title: 'Every backend of the upstream is at its concurrency limit' },
  'deadline-exceeded': { status: 504, title: 'The request deadline passed before a backend answered' },
  'upstream-connect-timeout': { status: 504, title: 'Connecting to the backend timed out' },
  'upstream-headers-timeout': { status: 504, title: 'The backend did not answer in time' },
  'upstream-unreachable': { status: 502, title: 'The backend could not be reached' },
  'upstream-connection-error': { status: 502, title: 'The connection to the backend failed' },
  'upstream-tls-error': { status: 502, title: 'TLS handshake with the backend failed' },
  'upstream-error': { status: 502, title: 'The backend request failed' },
  'request-aborted': { status: 400, title: 'The client aborted the request body' },
  'client-rate-limited': { status: 429, title: 'Client rate limit exceeded' },
  'client-quota-exceeded': { status: 403, title: "The client's quota for this period is spent" },
  'client-key-missing': { status: 401, title: 'The request lacks the client key its rate limit needs' },
  'client-unauthenticated': { status: 401, title: 'The request lacks valid credentials for this route' },
  'rate-limiter-unavailable': { status: 503, title: 'The rate limiter cannot decide (its store is unavailable)' },
  'admin-unauthorized': { status: 401, title: 'The admin listener needs its token' },
  'admin-forbidden': { status: 403, title: 'The admin listener refused a request a browser on another site could have sent' },
  'config-rejected': { status: 422, title: 'The config file is invalid; the running config keeps serving' },
  'backend-not-found': { status: 404, title: 'No backend of the running config has this id' },
  // fan-out (aggregate routes): whole-response errors, then the per-part problems of `_errors`
  'aggregate-part-failed': { status: 502, title: 'A required part of the aggregate failed' },
  'aggregate-timeout': { status: 504, title: 'The aggregate deadline passed before every required part answered' },
  'aggregate-input-missing': { status: 400, title: 'The request lacks a value the aggregate needs' },
  'aggregate-part-status': { status: 502, title: "The part's backend answered with an error status" },
  'aggregate-part-invalid-body': { status: 502, title: "The part's answer is not usable JSON" },
  'aggregate-part-too-large': { status: 502, title: "The part's answer exceeds maxPartBody" },
  'aggregate-part-timeout': { status: 504, title: 'The part did not answer in time' },
  'aggregate-part-skipped': { status: 424, title: 'The part was not called: the part it depends on gave no usable value' },
  'idempotency-key-invalid': { status: 400, title: 'The idempotency key (or the scope it needs) is missing or malformed' },
  'idempotency-key-in-use': { status: 409, title: 'A request with this idempotency key is still in progress' },
  'idempotency-key-reused': { status: 422, title: 'The idempotency key was already used for a different request' },
  'idempotency-store-unavailable': { status: 503, title: 'The idempotency store cannot be reached' },
  'held-upstream-removed': { status: 503, title: 'The upstream this request was held for left the config' },
  'shutting-down': { status: 503, title: 'The gateway is shutting down' },
  internal: { status: 500, title: 'Internal gateway error' },
} as const;

export type ProblemCode = keyof typeof PROBLEM_TYPES;

export const PROBLEM_TYPE_PREFIX = 'urn:spillway:problem:';

/** Extra headers and body members of a problem answer. */
export interface ProblemOptions {
  headers?: Record<string, string>;
  extensions?: Record<string, unknown>;
}

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

export function problemBody(code: ProblemCode, detail?: string, extensions?: Record<string, unknown>): ProblemDetails {
  const { status, title } = PROBLEM_TYPES[code];
  return { type: PROBLEM_TYPE_PREFIX + code, title, status, ...(detail ? { detail } : {}), ...extensions };
}

/**
 * Writes a problem response unless the response has already started (then the connection is
 * cut, since a half-sent body cannot be turned into an error).
 */
export function sendProblem(
  res: ServerResponse,
  code: ProblemCode,
  detail?: string,
  options: { headers?: Record<string, string>; extensions?: Record<string, unknown> } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problemBody(code, detail, options.extensions));
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...options.headers,
  };
  // HTTP/2 forbids connection-specific headers (node throws on them).
  if (res.req?.httpVersionMajor === 2) delete headers.connection;
  res.writeHead(PROBLEM_TYPES[code].status, headers);
  res.end(body);
}
