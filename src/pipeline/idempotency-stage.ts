// Idempotency-Key on a route (draft-ietf-httpapi-idempotency-key-header): the first request with a
// key goes to the backend under a short lease; its final answer is stored for `ttl`; duplicates
// get that answer (`Idempotent-Replayed: true`) without a backend call, `409` while the first is
// in flight, `422` when the key comes back with a different body. The gateway's own answers
// (its 429/502/503/504 problems, a static fallback) and backend throttles/unavailability are
// never stored: the key is released so the client can try again with it.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { sendProblem, type ProblemCode, type ProblemOptions } from '../core/problems.js';
import { DelegatingSink } from '../exchange/delegating-sink.js';
import type { ResponseSink } from '../exchange/sink.js';
import { fingerprint, scopedKey, type IdempotencyStore, type StoredAnswer } from '../idempotency/store.js';
import type { CompiledRoute, CompiledUpstream, RouteIdempotency } from '../snapshot/snapshot.js';

/** Backend answers that mean "not done, try again": never stored. */
const NOT_STORED = new Set([408, 425, 429, 502, 503, 504]);
/** Connection-specific fields, not part of a stored answer. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'date']);
const KEY_SYNTAX = /^[\x21-\x7e]{1,255}$/;

/** The key of this request when the route deduplicates its method, else undefined. */
export function idempotencyKeyOf(route: CompiledRoute, method: string, req: IncomingMessage): string | undefined {
  const idempotency = route.idempotency;
  if (idempotency === undefined || !idempotency.methods.has(method)) return undefined;
  const raw = req.headers[idempotency.header];
  return Array.isArray(raw) ? raw[0] : raw;
}

export interface GuardInput {
  req: IncomingMessage;
  res: ServerResponse;
  route: CompiledRoute;
  upstream: CompiledUpstream;
  idempotency: RouteIdempotency;
  key: string;
  method: string;
  path: string;
  body: Buffer | null;
  sink: ResponseSink;
  /** Sends the request on (with the sink that records the answer, or the plain one). */
  forward(sink: ResponseSink): void;
}

/** Decides what a keyed request gets: the backend (recorded), a replay, 409, 422, or a store-error answer. */
export function guardIdempotent(input: GuardInput): void {
  const { idempotency, key, res } = input;
  if (!KEY_SYNTAX.test(key)) {
    sendProblem(res, 'idempotency-key-invalid', `the ${idempotency.header} header must be 1 to 255 visible ASCII characters`);
    return;
  }
  const scope = idempotency.scope === undefined ? '' : idempotency.scope(input.req, input.route.name);
  if (scope instanceof Promise)
    scope.then(
      (value) => withScope(input, value),
      () => withScope(input, undefined),
    );
  else withScope(input, scope);
}

function withScope(input: GuardInput, scope: string | undefined): void {
  const { idempotency, res } = input;
  if (scope === undefined) {
    sendProblem(res, 'idempotency-key-invalid', 'the request lacks the value its idempotency key is scoped by');
    return;
  }
  const storeKey = scopedKey(input.route.name, input.method, input.path, scope, input.key);
  const print = fingerprint(input.body);
  const { store } = idempotency;
  store.begin(storeKey, print, leaseMs(input.upstream)).then(
    (result) => {
      if (res.destroyed) {
        if (result.kind === 'acquired') void store.release(storeKey, result.token).catch(() => {});
        return;
      }
      if (result.kind !== 'acquired' && result.fingerprint !== print) {
        sendProblem(res, 'idempotency-key-reused', `this ${idempotency.header} was used for a request with a different body`);
        return;
      }
      switch (result.kind) {
        case 'acquired':
          input.forward(new RecordingSink(input.sink, store, storeKey, result.token, print, idempotency));
          return;
        case 'in-flight': {
          const waitMs = Math.max(1, Math.min(1_000, result.leaseLeftMs));
          sendProblem(res, 'idempotency-key-in-use', `a request with this ${idempotency.header} is still in progress; retry shortly`, {
            headers: { 'retry-after': '1', 'retry-after-ms': String(waitMs) },
            extensions: { retryAfterMs: waitMs },
          });
          return;
        }
        case 'done':
          replay(res, result.answer);
          return;
      }
    },
    () => {
      if (res.destroyed) return;
      if (idempotency.onStoreError === 'open') {
        input.forward(input.sink);
        return;
      }
      sendProblem(res, 'idempotency-store-unavailable', 'the idempotency store cannot be reached; nothing was sent to the backend', {
        headers: { 'retry-after': '1', 'retry-after-ms': '1000' },
        extensions: { retryAfterMs: 1000 },
      });
    },
  );
}

/** How long the first request holds its key: its deadline (attempts and hold), never the ttl. */
function leaseMs(upstream: CompiledUpstream): number {
  const deadline = upstream.resilience.retry?.deadline || upstream.timeouts.headers;
  return deadline + (upstream.hold?.policy.maxWait ?? 0);
}

function replay(res: ServerResponse, answer: StoredAnswer): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of answer.headers) {
    const existing = headers[name];
    headers[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  headers['content-length'] = String(answer.body.length);
  headers['idempotent-replayed'] = 'true';
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}

/** Passes the answer through and keeps a copy; stores it at the end, or releases the key. */
class RecordingSink extends DelegatingSink {
  #status = 0;
  #headers: Array<[string, string]> = [];
  #chunks: Buffer[] = [];
  #size = 0;
  #storable = true;
  #settled = false;

  constructor(
    inner: ResponseSink,
    private readonly store: IdempotencyStore,
    private readonly key: string,
    private readonly token: string,
    private readonly print: string,
    private readonly policy: RouteIdempotency,
  ) {
    super(inner);
  }

  override gatewayAnswer(): void {
    this.#storable = false;
    super.gatewayAnswer();
  }

  override start(status: number, headers: IncomingHttpHeaders): void {
    this.#status = status;
    if (NOT_STORED.has(status)) this.#storable = false;
    if (this.#storable) {
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined || HOP_BY_HOP.has(name) || name === 'content-length') continue;
        for (const item of Array.isArray(value) ? value : [String(value)]) this.#headers.push([name, item]);
      }
    }
    super.start(status, headers);
  }

  override write(chunk: Buffer): boolean {
    if (this.#storable) {
      this.#size += chunk.length;
      if (this.#size > this.policy.maxBody) {
        this.#storable = false;
        this.#chunks = [];
      } else this.#chunks.push(chunk);
    }
    return super.write(chunk);
  }

  override end(): void {
    if (!this.#settled) {
      if (this.#storable && this.#status !== 0) {
        this.#settled = true;
        const answer: StoredAnswer = { status: this.#status, headers: this.#headers, body: Buffer.concat(this.#chunks, this.#size) };
        void this.store.complete(this.key, this.token, this.print, answer, this.policy.ttl).catch(() => {});
      } else this.#release();
    }
    super.end();
  }

  override problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    this.#release();
    super.problem(code, detail, options);
  }

  override abort(error: Error): void {
    // Cut mid-answer: the backend has acted on the request; the lease runs out instead, so a
    // duplicate within the deadline is not sent again.
    if (this.#status === 0) this.#release();
    else this.#settled = true;
    super.abort(error);
  }

  #release(): void {
    if (this.#settled) return;
    this.#settled = true;
    void this.store.release(this.key, this.token).catch(() => {});
  }
}
