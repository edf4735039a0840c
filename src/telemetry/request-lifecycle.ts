// Begins and finishes telemetry for one client request: the request id (kept from the client or
// generated; forwarded to the backend and returned), the server span, and at the end the
// `request` observer event (metrics), the sampled request log line and the span's end.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Snapshot } from '../snapshot/snapshot.js';
import { addResponseField } from '../exchange/gateway-response.js';
import type { RequestHandler } from '../pipeline/proxy-handler.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { RequestScope } from '../exchange/request-scope.js';
import { backendLabel } from './labels.js';
import type { Logger } from './logger.js';
import { redactTarget } from './redact.js';
import type { RequestTracer, ServerTrace } from './tracing.js';

export interface LifecycleOptions {
  getSnapshot: () => Snapshot;
  observer: ProxyObserver;
  logger: Logger;
  tracer: RequestTracer | undefined;
  random: () => number;
}

/** A client-sent id is kept when it is short, visible ASCII; otherwise a new one is made. */
const VALID_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * New request ids, UUID-shaped: the first 26 hex digits are random, drawn anew every 2^24 ids; the
 * last 6 count up. Unique within the process, random across replicas, and a small-integer counter
 * step instead of a randomUUID() per request.
 */
const ID_BLOCK = 0x1000000;
let idPrefix = '';
let idCounter = ID_BLOCK;
export function nextRequestId(): string {
  if (++idCounter >= ID_BLOCK) {
    idCounter = 0;
    idPrefix = randomUUID().slice(0, 30);
  }
  return idPrefix + (ID_BLOCK + idCounter).toString(16).slice(1);
}

/** Where a response keeps its request's scope: one shared 'close' listener, no closure per request. */
const SCOPE = Symbol('spillway.scope');
type ScopedResponse = ServerResponse & { [SCOPE]?: Scope };

class Scope implements RequestScope {
  route: RequestScope['route'] = undefined;
  attempts = 0;
  upstream: RequestScope['upstream'] = undefined;
  backend: RequestScope['backend'] = undefined;
  tokens: RequestScope['tokens'] = undefined;
  heldMs: number | undefined = undefined;
  readonly startedAt = performance.now();

  constructor(
    readonly id: string,
    readonly trace: ServerTrace | undefined,
    readonly req: IncomingMessage,
    /** The request-log sample rate when the request arrived. */
    readonly sample: number,
  ) {}
}

export function instrumentHandler(handler: RequestHandler, options: LifecycleOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { getSnapshot, observer, logger, tracer, random } = options;

  function finish(req: IncomingMessage, res: ServerResponse, scope: Scope): void {
    const { sample } = scope;
    const durationMs = performance.now() - scope.startedAt;
    const status = res.headersSent ? res.statusCode : 0;
    const aborted = !res.writableFinished;
    const method = req.method ?? 'GET';
    observer.request(scope.route, method, status, durationMs, scope.attempts);
    scope.trace?.finish(scope.route, status, scope.attempts, aborted);
    if (sample > 0 && (sample >= 1 || random() < sample)) {
      logger.info(
        {
          event: 'request',
          requestId: scope.id,
          method,
          target: redactTarget(req.url ?? '/'),
          route: scope.route?.name,
          upstream: (scope.upstream ?? scope.route?.upstream)?.name,
          backend: scope.backend ? backendLabel(scope.backend) : undefined,
          attempts: scope.attempts,
          ...(scope.tokens
            ? {
                model: scope.tokens.model,
                promptTokens: scope.tokens.promptTokens,
                completionTokens: scope.tokens.completionTokens,
                tokensFrom: scope.tokens.source,
              }
            : {}),
          ...(scope.heldMs !== undefined ? { heldMs: Math.round(scope.heldMs) } : {}),
          status,
          durationMs: Math.round(durationMs * 1000) / 1000,
          ...(aborted ? { aborted: true } : {}),
        },
        'request',
      );
    }
  }

  /** 'close' comes once per response; its scope says which request it ends. */
  function onClose(this: ScopedResponse): void {
    const scope = this[SCOPE];
    if (scope === undefined) return;
    this[SCOPE] = undefined;
    finish(scope.req, this, scope);
  }

  return function handleInstrumented(req, res) {
    const { requests } = getSnapshot().config.log;
    const header = requests.idHeader;
    let id = req.headers[header];
    if (typeof id !== 'string' || !VALID_ID.test(id)) {
      id = nextRequestId();
      req.headers[header] = id;
    }
    addResponseField(res, header, id);
    const scope = new Scope(id, tracer?.start(req, id), req, requests.sample);
    (res as ScopedResponse)[SCOPE] = scope;
    res.on('close', onClose);
    handler(req, res, scope);
  };
}
