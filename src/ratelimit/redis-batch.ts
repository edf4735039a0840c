// Every Redis check of one event-loop turn goes out in one round trip: checks are queued, and at
// the end of the turn (setImmediate) each hash slot's checks become one script call (on a
// standalone Redis, everything is one call). One round trip per turn instead of one command per
// request: fewer writes, fewer replies to parse, far less work for Redis.
//
// When is Redis "slow"? Not when a timer says so: under a burst the gateway's own event loop is
// busy for tens of milliseconds, and a timer sharing that loop fires late while the reply already
// sits unread in the socket. A round trip is slow when the gateway has spent `commandTimeout`
// *idle* — waiting in the poll phase with nothing else to do — without its reply (event-loop
// utilisation tells idle time from busy time). A slow round trip is reported (the breaker counts
// it as a failure) but its checks go on waiting: they were sent, they may still succeed, and
// deciding them elsewhere would count them twice. Only `hardTimeout` of wall-clock time after the
// batch was sent ends the wait: the hard bound, whatever the load.
//
// A check given up on at the hard bound may still succeed in Redis. Its request has already been
// decided without Redis (per onRedisError), so when the late reply shows that Redis took tokens
// for it, they are given back: every request is counted in one place only.

import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { TakeRequest, TakeResult } from './bucket.js';

/** Runs the batch script: keys of one slot, flat arguments; resolves to the flat reply. */
export type ScriptCall = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

export interface BatchOptions {
  readonly commandTimeout: number;
  readonly hardTimeout: number;
  /** Cluster: one call per hash slot (a script call across slots fails with CROSSSLOT). */
  readonly bySlot: boolean;
  /** Most checks in one script call (a long script blocks Redis for everyone). */
  readonly maxBatch?: number;
  /** A round trip went `commandTimeout` of idle time without its reply (its checks still wait). */
  readonly onSlow?: (reason: string) => void;
}

/** A failed round trip: every check of the batch fails with the same error (one breaker strike). */
export class RoundTripError extends Error {
  constructor(
    message: string,
    readonly roundTrip: number,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

interface Waiting {
  readonly request: TakeRequest;
  resolve(result: TakeResult): void;
  reject(error: Error): void;
}

export class RedisBatcher {
  #queue: Waiting[] = [];
  #scheduled = false;
  #roundTrips = 0;
  /** Checks given up on whose late replies are still due (for tests and shutdown). */
  lateRefunds = 0;

  constructor(
    readonly call: ScriptCall,
    readonly options: BatchOptions,
  ) {}

  take(request: TakeRequest): Promise<TakeResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    const max = this.options.maxBatch ?? 500;
    if (!this.options.bySlot) {
      for (let i = 0; i < queue.length; i += max) this.#send(queue.slice(i, i + max));
      return;
    }
    const groups = new Map<string, Waiting[]>();
    for (const waiting of queue) {
      const tag = hashTag(waiting.request.key);
      const group = groups.get(tag);
      if (group) group.push(waiting);
      else groups.set(tag, [waiting]);
    }
    for (const group of groups.values()) for (let i = 0; i < group.length; i += max) this.#send(group.slice(i, i + max));
  };

  #send(batch: readonly Waiting[]): void {
    const keyIndex = new Map<string, number>();
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    for (const { request } of batch) {
      let index = keyIndex.get(request.key);
      if (index === undefined) {
        keys.push(request.key);
        index = keys.length;
        keyIndex.set(request.key, index);
      }
      args.push(index, request.capacity, request.refillPerMs, request.cost, request.maxWaitMs, request.windowMs ?? 0);
    }
    const roundTrip = ++this.#roundTrips;
    const sentAt = performance.now();
    const loopAtSend = performance.eventLoopUtilization();
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const giveUp = (error: RoundTripError): void => {
      settled = true;
      for (const waiting of batch) waiting.reject(error);
    };
    // The verdict runs in the check phase after the timer: a reply read from the socket in the
    // same loop turn still counts.
    let slow = false;
    const verdict = (): void => {
      if (settled) return;
      const wall = performance.now() - sentAt;
      if (wall >= this.options.hardTimeout) {
        giveUp(new RoundTripError(`command timed out: no reply within ${this.options.hardTimeout}ms (hardTimeout)`, roundTrip, true));
        return;
      }
      const idle = idleSince(loopAtSend);
      if (!slow && idle >= this.options.commandTimeout) {
        slow = true;
        this.options.onSlow?.(`no reply after waiting ${this.options.commandTimeout}ms (commandTimeout)`);
      }
      const left = slow ? this.options.hardTimeout - wall : Math.min(this.options.commandTimeout - idle, this.options.hardTimeout - wall);
      timer = setTimeout(() => setImmediate(verdict), Math.max(1, Math.ceil(left)));
    };
    timer = setTimeout(() => setImmediate(verdict), this.options.commandTimeout);

    this.call(keys, args).then(
      (reply) => {
        clearTimeout(timer);
        const values = reply as Array<number | string>;
        if (settled) {
          this.#refundLate(batch, values);
          return;
        }
        settled = true;
        for (let i = 0; i < batch.length; i++) {
          const at = i * 4;
          batch[i]!.resolve({
            allowed: Number(values[at]) === 1,
            remaining: Number(values[at + 1]),
            waitMs: Number(values[at + 2]),
            fullInMs: Number(values[at + 3]),
          });
        }
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (settled) return;
        giveUp(new RoundTripError(error instanceof Error ? error.message : String(error), roundTrip, false));
      },
    );
  }

  /** Gives back the tokens Redis took for checks whose requests were already decided without it. */
  #refundLate(batch: readonly Waiting[], values: ReadonlyArray<number | string>): void {
    for (let i = 0; i < batch.length; i++) {
      const { request } = batch[i]!;
      if (request.cost <= 0 || Number(values[i * 4]) !== 1) continue;
      this.lateRefunds++;
      this.take({ ...request, cost: -request.cost, maxWaitMs: 0 }).catch(() => undefined);
    }
  }
}

/** Milliseconds the event loop spent idle (waiting for I/O) since `since`. */
function idleSince(since: EventLoopUtilization): number {
  return performance.eventLoopUtilization(since).idle;
}

/** The part of a key Redis Cluster hashes: the first non-empty {…}, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}
