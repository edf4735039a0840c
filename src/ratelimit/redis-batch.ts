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

import { performance } from 'node:perf_hooks';
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

/** One script call in flight: its checks, and when its wait is judged next. */
interface RoundTrip {
  readonly batch: readonly Waiting[];
  readonly roundTrip: number;
  readonly sentAt: number;
  /** The event loop's idle time (ms, cumulative) when the batch was sent. */
  readonly idleAtSend: number;
  settled: boolean;
  slow: boolean;
  checkAt: number;
  /** Neighbours in the batcher's list of round trips in flight (no allocation per add or remove). */
  prev: RoundTrip | undefined;
  next: RoundTrip | undefined;
  watched: boolean;
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
      if (queue.length <= max) this.#send(queue);
      else for (let i = 0; i < queue.length; i += max) this.#send(queue.slice(i, i + max));
      return;
    }
    if (queue.length === 1) {
      this.#send(queue);
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
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    // Most batches carry one or a few checks: a linear search beats a Map there.
    const keyIndex = batch.length > 8 ? new Map<string, number>() : undefined;
    for (const { request } of batch) {
      let index = keyIndex ? keyIndex.get(request.key) : keys.indexOf(request.key) + 1 || undefined;
      if (index === undefined) {
        keys.push(request.key);
        index = keys.length;
        keyIndex?.set(request.key, index);
      }
      args.push(index, request.capacity, request.refillPerMs, request.cost, request.maxWaitMs, request.windowMs ?? 0);
    }
    const trip: RoundTrip = {
      batch,
      roundTrip: ++this.#roundTrips,
      sentAt: performance.now(),
      idleAtSend: performance.nodeTiming.idleTime,
      settled: false,
      slow: false,
      checkAt: 0,
      prev: undefined,
      next: undefined,
      watched: false,
    };
    trip.checkAt = trip.sentAt + this.options.commandTimeout;
    this.#add(trip);
    this.#watch(trip.checkAt);
    if (!this.#watchdog!.hasRef()) this.#watchdog!.ref();
    this.call(keys, args).then(
      (reply) => this.#replied(trip, reply as Array<number | string>),
      (error: unknown) => {
        this.#done(trip);
        if (trip.settled) return;
        this.#giveUp(trip, new RoundTripError(error instanceof Error ? error.message : String(error), trip.roundTrip, false));
      },
    );
  }

  #replied(trip: RoundTrip, values: Array<number | string>): void {
    this.#done(trip);
    const { batch } = trip;
    if (trip.settled) {
      this.#refundLate(batch, values);
      return;
    }
    trip.settled = true;
    for (let i = 0; i < batch.length; i++) {
      const at = i * 4;
      batch[i]!.resolve({
        allowed: Number(values[at]) === 1,
        remaining: Number(values[at + 1]),
        waitMs: Number(values[at + 2]),
        fullInMs: Number(values[at + 3]),
      });
    }
  }

  /** Answered (or failed): no longer watched; an idle watchdog does not hold the process open. */
  #done(trip: RoundTrip): void {
    this.#remove(trip);
    if (this.#first === undefined) this.#watchdog?.unref();
  }

  #add(trip: RoundTrip): void {
    trip.watched = true;
    trip.prev = this.#last;
    if (this.#last) this.#last.next = trip;
    else this.#first = trip;
    this.#last = trip;
  }

  #remove(trip: RoundTrip): void {
    if (!trip.watched) return;
    trip.watched = false;
    if (trip.prev) trip.prev.next = trip.next;
    else this.#first = trip.next;
    if (trip.next) trip.next.prev = trip.prev;
    else this.#last = trip.prev;
    trip.prev = trip.next = undefined;
  }

  #giveUp(trip: RoundTrip, error: RoundTripError): void {
    trip.settled = true;
    for (const waiting of trip.batch) waiting.reject(error);
  }

  // One timer watches every round trip in flight (one per batch would cost a timer per request at
  // low rates): it is due at the earliest verdict time and re-armed after each sweep.
  #first: RoundTrip | undefined;
  #last: RoundTrip | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #watchdogAt = Number.POSITIVE_INFINITY;

  #watch(at: number): void {
    if (this.#watchdog !== undefined && this.#watchdogAt <= at) return;
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#watchdogAt = at;
    // The sweep runs in the check phase after the timer: a reply read from the socket in the
    // same loop turn still counts.
    this.#watchdog = setTimeout(() => setImmediate(this.#sweep), Math.max(1, Math.ceil(at - performance.now())));
  }

  readonly #sweep = (): void => {
    this.#watchdog = undefined;
    this.#watchdogAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (let trip = this.#first; trip !== undefined; ) {
      const following = trip.next;
      if (!trip.settled && trip.checkAt <= now) this.#verdict(trip, now);
      // Given up on: no longer watched (a late reply still finds it through its promise).
      if (trip.settled) this.#remove(trip);
      else if (trip.checkAt < next) next = trip.checkAt;
      trip = following;
    }
    if (next !== Number.POSITIVE_INFINITY) this.#watch(next);
  };

  /** Is this round trip slow (idle time) or past the hard bound (wall time)? Sets its next check. */
  #verdict(trip: RoundTrip, now: number): void {
    const { commandTimeout, hardTimeout } = this.options;
    const wall = now - trip.sentAt;
    if (wall >= hardTimeout) {
      this.#giveUp(trip, new RoundTripError(`command timed out: no reply within ${hardTimeout}ms (hardTimeout)`, trip.roundTrip, true));
      return;
    }
    const idle = performance.nodeTiming.idleTime - trip.idleAtSend;
    if (!trip.slow && idle >= commandTimeout) {
      trip.slow = true;
      this.options.onSlow?.(`no reply after waiting ${commandTimeout}ms (commandTimeout)`);
    }
    const left = trip.slow ? hardTimeout - wall : Math.min(commandTimeout - idle, hardTimeout - wall);
    trip.checkAt = now + Math.max(1, Math.ceil(left));
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

/** The part of a key Redis Cluster hashes: the first non-empty {…}, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}
