// One request's place in its upstream's hold queue (throttle.hold): when it may be held (the
// soonest backend is back within maxWait and the request's deadline; queue not full), and what
// happens when the hold ends — released or expired (the exchange goes on), or evicted (upstream
// removed on reload, or the drain deadline of a shutdown: 503 with Retry-After).

import type { HoldEntry, HoldWaiter } from '../resilience/hold.js';
import type { CompiledUpstream } from '../snapshot/snapshot.js';
import type { ExchangeContext } from './backend-walk.js';
import type { ForwardRequest } from './forward-request.js';
import { releaseHeld } from './hold-release.js';
import type { ResponseSink } from './sink.js';

/** What a hold needs of the exchange it belongs to. */
export interface HoldOwner {
  readonly upstream: CompiledUpstream;
  readonly context: ExchangeContext;
  readonly sink: ResponseSink;
  readonly forward: ForwardRequest;
  readonly clientGone: boolean;
  /** Epoch ms bounding all attempts; 0 = none. */
  readonly deadlineAt: number;
  /** The hold ended: try the pool again (`expired`: maxWait is spent, answer if nothing is ready). */
  resumeAfterHold(now: number, expired: boolean): void;
}

export class HoldTicket implements HoldWaiter {
  /** Epoch ms the request was first held; 0 = never. A request held again keeps its first time. */
  heldSince = 0;
  #entry: HoldEntry | undefined;

  constructor(private readonly owner: HoldOwner) {}

  /** Holds the request until `readyAt` (or the pacer's release); false when it cannot be held. */
  tryHold(readyAt: number, now: number): boolean {
    const { owner } = this;
    const hold = owner.upstream.hold;
    if (hold === undefined || !owner.forward.replayable || owner.clientGone) return false;
    const since = this.heldSince || now;
    let expiresAt = since + hold.policy.maxWait;
    if (owner.deadlineAt !== 0 && owner.deadlineAt < expiresAt) expiresAt = owner.deadlineAt;
    if (readyAt >= expiresAt) return false;
    const entry = hold.queue.add(this, expiresAt, now);
    if (entry === undefined) {
      owner.context.observer.holdEnded(owner.upstream, 'queue-full', 0);
      return false;
    }
    this.heldSince = since;
    this.#entry = entry;
    owner.context.observer.held(owner.upstream);
    const upstream = owner.upstream;
    hold.queue.onWake = () => releaseHeld(upstream, Date.now());
    hold.queue.wakeAt(readyAt, now);
    return true;
  }

  /** The client went away: leave the queue. */
  cancel(): void {
    if (this.#entry === undefined) return;
    this.owner.upstream.hold?.queue.cancel(this.#entry);
    this.#entry = undefined;
    this.owner.context.observer.holdEnded(this.owner.upstream, 'expired', Date.now() - this.heldSince);
  }

  /** HoldWaiter: a backend can take the request now. */
  releaseHold(): void {
    this.#end('released');
  }

  /** HoldWaiter: held for maxWait (or until the deadline). */
  holdExpired(): void {
    this.#end('expired');
  }

  /** HoldWaiter: the upstream left the config, or the gateway is shutting down: 503 with Retry-After. */
  evictHold(reason: 'removed' | 'shutdown'): void {
    this.#entry = undefined;
    const { owner } = this;
    const name = owner.upstream.name;
    owner.context.observer.holdEnded(owner.upstream, reason, Date.now() - this.heldSince);
    if (owner.clientGone) return;
    const headers = { 'retry-after': '1', 'retry-after-ms': '1000' };
    const extensions = { upstream: name, retryAfterMs: 1000 };
    if (reason === 'removed')
      owner.sink.problem('held-upstream-removed', `upstream "${name}" was removed from the config while the request was held`, {
        headers,
        extensions,
      });
    else
      owner.sink.problem('shutting-down', 'the gateway is shutting down; send the request again', {
        headers: { ...headers, connection: 'close' },
        extensions,
      });
  }

  #end(outcome: 'released' | 'expired'): void {
    this.#entry = undefined;
    const { owner } = this;
    const now = Date.now();
    owner.context.observer.holdEnded(owner.upstream, outcome, now - this.heldSince);
    if (owner.forward.scope) owner.forward.scope.heldMs = now - this.heldSince;
    if (owner.clientGone) return;
    owner.resumeAfterHold(now, outcome === 'expired');
  }
}
