// The LLM side of the request path: the body read before routing or limiting when a rule's body
// conditions or a token policy need it (at most the replay buffer), the token estimate a token
// policy reserves, the stream_options.include_usage request, and the sink that settles the
// reservation from the answer's usage and reports the tokens.

import { createHash } from 'node:crypto';
import type { TokenUse } from '../core/events.js';
import type { Reservation } from '../ratelimit/route-limit.js';
import { estimateTokens, parseJsonObject, type TokenEstimate } from '../ratelimit/token-estimate.js';
import type { ProxyExchange } from '../exchange/exchange.js';
import type { ForwardRequest } from '../exchange/forward-request.js';
import type { ResponseSink } from '../exchange/sink.js';
import { UsageSink, type TokenUsage } from '../exchange/usage-sink.js';
import type { ProxyObserver } from '../snapshot/observer.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';
import type { ClientBody } from './client-body.js';

/** A body read before routing or limiting, with what was learnt from it. */
export class ReadBody {
  #json: Record<string, unknown> | undefined | null = null;
  #estimate: TokenEstimate | undefined;

  constructor(readonly body: ClientBody) {}

  /** The body as a JSON object; undefined when there is none, it is not JSON, or it was too large to keep. */
  get json(): Record<string, unknown> | undefined {
    if (this.#json === null) this.#json = this.body.kind === 'buffer' ? parseJsonObject(this.body.body) : undefined;
    return this.#json;
  }

  get estimate(): TokenEstimate {
    if (this.#estimate === undefined) {
      const body = this.body;
      if (body.kind === 'buffer') this.#estimate = estimateTokens(body.body, this.json);
      else {
        // Streamed (past the replay buffer): bytes / 4 of what it declared.
        const bytes = body.kind === 'stream' ? (body.length ?? 0) : 0;
        const promptTokens = Math.ceil(bytes / 4);
        this.#estimate = { model: undefined, promptTokens, completionTokens: 0, total: Math.max(1, promptTokens) };
      }
    }
    return this.#estimate;
  }
}

const largestReplay = new WeakMap<Snapshot, number>();

/** The most of a body read before routing: the largest replay buffer of the config's upstreams. */
export function bodyReadLimit(snapshot: Snapshot, route?: CompiledRoute): number {
  if (route?.action.kind === 'upstream') return route.action.upstream.replayBuffer;
  let limit = largestReplay.get(snapshot);
  if (limit === undefined) {
    limit = 0;
    for (const upstream of snapshot.upstreams.values()) limit = Math.max(limit, upstream.replayBuffer);
    largestReplay.set(snapshot, limit);
  }
  return limit;
}

/**
 * A streamed request of a token-limited route whose client did not ask for usage: ask for it
 * (stream_options.include_usage), and take the extra chunk out of the answer. Returns whether
 * the body was rewritten.
 */
export function askForUsage(forward: ForwardRequest): boolean {
  const json = forward.json;
  if (json === undefined || json.stream !== true || !Buffer.isBuffer(forward.body)) return false;
  const options = json.stream_options;
  if (options && typeof options === 'object' && (options as Record<string, unknown>).include_usage === true) return false;
  const rewritten = { ...json, stream_options: { ...(options && typeof options === 'object' ? options : {}), include_usage: true } };
  forward.json = rewritten;
  forward.body = Buffer.from(JSON.stringify(rewritten));
  return true;
}

/** A short, stable, non-reversible label for a client's rate-limit identity. */
function clientLabel(reservation: Reservation): string | undefined {
  const taken = reservation.taken.find((t) => t.role === 'tokens') ?? reservation.taken[0];
  return taken ? createHash('sha256').update(taken.request.key).digest('hex').slice(0, 12) : undefined;
}

/**
 * Wraps the client's sink so the reservation is settled when the answer ends: token policies from
 * the answer's usage; in-flight slots go back. `exchange()` names the exchange once it exists.
 */
export function settlingSink(
  sink: ResponseSink,
  reservation: Reservation,
  read: ReadBody | undefined,
  strip: boolean,
  route: CompiledRoute,
  observer: ProxyObserver,
  forward: ForwardRequest,
  exchange: () => ProxyExchange | undefined,
): ResponseSink {
  const estimate = reservation.estimate !== undefined ? read?.estimate : undefined;
  return new UsageSink(
    sink,
    estimate,
    strip,
    (usage: TokenUsage | undefined) => {
      const used = usage === undefined ? undefined : usage.promptTokens + usage.completionTokens;
      reservation.settle(used);
      if (estimate === undefined) return;
      const use: TokenUse = usage
        ? { ...usage, client: clientLabel(reservation) }
        : {
            model: estimate.model,
            client: clientLabel(reservation),
            promptTokens: estimate.promptTokens,
            completionTokens: estimate.completionTokens,
            source: 'estimate',
          };
      if (forward.scope) forward.scope.tokens = use;
      const current = exchange()?.current;
      observer.llmTokens(route, current ? exchange()?.upstream : undefined, current?.backend, use);
    },
    estimate !== undefined,
  );
}
