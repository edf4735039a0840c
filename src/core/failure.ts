// One classification of a failed attempt, used by retries (may it be sent again?), breakers and
// metrics (error or timeout?) and the problem answer (which problem type?).

import type { ProblemCode } from './problems.js';

/** How an attempt failed, as far as retrying is concerned. */
export type FailureKind =
  /**
   * refused / unreachable / connect timeout / TLS handshake failed: the request was never
   * written, so the backend provably never saw it — always safe to send elsewhere
   */
  | 'connect'
  /**
   * the connection broke (reset, closed) before the first response byte, after the request may
   * have been written: the backend may have received it. (A request undici had not yet written
   * when its pooled socket closed is re-queued by undici on a new connection and never fails.)
   */
  | 'reset'
  /** no status line within the headers timeout */
  | 'timeout'
  /** a response status listed in retry.on */
  | 'status'
  | 'other';

export interface Failure {
  readonly kind: FailureKind;
  /** The problem type the client gets when the failure is answered. */
  readonly problem: ProblemCode;
  /** Reported as a timeout (metrics, traces) rather than an error. */
  readonly timedOut: boolean;
  /** The client caused it (body too large or too slow): never retried, never held against the backend. */
  readonly clientFault: boolean;
}

const TLS_ERROR = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME|ALTNAME|EPROTO/;

/** True for certificate and handshake failures (unknown CA, expired, wrong name, protocol). */
export function isTlsError(error: { code?: string | undefined }): boolean {
  return error.code !== undefined && TLS_ERROR.test(error.code);
}

const failure = (kind: FailureKind, problem: ProblemCode, timedOut = false, clientFault = false): Failure => ({
  kind,
  problem,
  timedOut,
  clientFault,
});
const BODY_TOO_LARGE = failure('other', 'payload-too-large', false, true);
const BODY_TIMEOUT = failure('other', 'request-timeout', false, true);
const CONNECT_TIMEOUT = failure('connect', 'upstream-connect-timeout', true);
const HEADERS_TIMEOUT = failure('timeout', 'upstream-headers-timeout', true);
const UNREACHABLE = failure('connect', 'upstream-unreachable');
const CONNECTION_ERROR = failure('reset', 'upstream-connection-error');
// A failed handshake happens before any request byte is written.
const TLS = failure('connect', 'upstream-tls-error');
const OTHER = failure('other', 'upstream-error');

/** Classifies an attempt's error by its code (Node's socket errors and undici's own). */
export function classifyFailure(error: { code?: string | undefined }): Failure {
  switch (error.code) {
    case 'SPILLWAY_BODY_TOO_LARGE':
      return BODY_TOO_LARGE;
    case 'SPILLWAY_BODY_TIMEOUT':
      return BODY_TIMEOUT;
    case 'UND_ERR_CONNECT_TIMEOUT':
      return CONNECT_TIMEOUT;
    case 'UND_ERR_HEADERS_TIMEOUT':
      return HEADERS_TIMEOUT;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
    // undici refuses to dispatch on a pool that is closing (a reload dropped the backend): never sent.
    case 'UND_ERR_CLOSED':
      return UNREACHABLE;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return CONNECTION_ERROR;
    default:
      return isTlsError(error) ? TLS : OTHER;
  }
}
