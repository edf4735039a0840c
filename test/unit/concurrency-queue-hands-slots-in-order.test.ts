// The per-backend concurrency limit (src/resilience/concurrency.ts with the slot counters of
// src/upstream/backend-state.ts): `perBackend` slots, then a bounded FIFO of waiters, each
// waiting at most `maxWait`. Timers are faked, so a wait expires exactly when the test says.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackendQueue, type QueueWaiter } from '../../src/resilience/concurrency.js';
import type { ConcurrencyPolicy } from '../../src/resilience/policy.js';
import { BackendState } from '../../src/state/backend-state.js';

const log: string[] = [];

/** A request waiting for a slot, behaving like the exchange: it takes the slot when the backend admits it. */
function waiter(name: string, state: BackendState, takes = true): QueueWaiter {
  return {
    wake() {
      if (!takes || !state.admitsWaiter()) {
        log.push(`${name}: declined`);
        return false;
      }
      state.inFlight++;
      log.push(`${name}: served`);
      return true;
    },
    expire() {
      log.push(`${name}: 503 wait expired`);
    },
  };
}

function backend(policy: Partial<ConcurrencyPolicy> = {}): BackendState {
  const full: ConcurrencyPolicy = { perBackend: 2, queue: 3, maxWait: 1_000, ...policy };
  const state = new BackendState('up http://a');
  state.maxConcurrent = full.perBackend;
  state.queue = new BackendQueue(full);
  return state;
}

/** A request arrives: a slot if one is free (and nobody waits), else the queue, else 503. */
function arrive(state: BackendState, name: string): 'served' | 'queued' | 'queue full' {
  if (state.admits()) {
    state.inFlight++;
    return 'served';
  }
  return state.queue!.add(waiter(name, state)) ? 'queued' : 'queue full';
}

beforeEach(() => {
  vi.useFakeTimers();
  log.length = 0;
});

afterEach(() => {
  vi.useRealTimers();
});

describe('slots', () => {
  it('perBackend requests run at once; the next ones wait, then the queue is full', () => {
    const state = backend({ perBackend: 2, queue: 3 });
    expect(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7'].map((name) => arrive(state, name))).toEqual([
      'served',
      'served',
      'queued',
      'queued',
      'queued',
      'queue full',
      'queue full',
    ]);
    expect([state.inFlight, state.queued]).toEqual([2, 3]);
  });

  it('queue 0: over the limit is answered at once, nobody waits', () => {
    const state = backend({ perBackend: 1, queue: 0 });
    expect([arrive(state, 'r1'), arrive(state, 'r2')]).toEqual(['served', 'queue full']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a newcomer does not overtake waiters when a slot is free: it queues behind them', () => {
    const state = backend({ perBackend: 1 });
    arrive(state, 'r1');
    arrive(state, 'r2');
    state.inFlight--; // a slot frees without a drain yet
    expect(state.admits()).toBe(false);
    expect(state.admitsWaiter()).toBe(true);
  });
});

describe('release hands the slot to the next waiter', () => {
  it('in arrival order, one per freed slot, keeping the backend at its limit', () => {
    const state = backend({ perBackend: 2, queue: 3 });
    for (const name of ['r1', 'r2', 'w1', 'w2', 'w3']) arrive(state, name);
    state.releaseSlot();
    expect(log).toEqual(['w1: served']);
    expect([state.inFlight, state.queued]).toEqual([2, 2]);
    state.releaseSlot();
    state.releaseSlot();
    expect(log).toEqual(['w1: served', 'w2: served', 'w3: served']);
    expect([state.inFlight, state.queued]).toEqual([2, 0]);
    state.releaseSlot();
    expect([state.inFlight, state.queued]).toEqual([1, 0]);
  });

  it('a waiter that went elsewhere passes the slot on to the next one in the same release', () => {
    const state = backend({ perBackend: 1 });
    arrive(state, 'r1');
    state.queue!.add(waiter('w1', state, false));
    state.queue!.add(waiter('w2', state));
    state.releaseSlot();
    expect(log).toEqual(['w1: declined', 'w2: served']);
    expect([state.inFlight, state.queued]).toEqual([1, 0]);
  });

  it('a queue full a moment ago takes a new waiter once one left it', () => {
    const state = backend({ perBackend: 1, queue: 1 });
    expect([arrive(state, 'r1'), arrive(state, 'w1'), arrive(state, 'w2')]).toEqual(['served', 'queued', 'queue full']);
    state.releaseSlot();
    expect(arrive(state, 'w3')).toBe('queued');
  });

  it('a raised limit lets drain serve several waiters at once', () => {
    const state = backend({ perBackend: 1, queue: 3 });
    for (const name of ['r1', 'w1', 'w2', 'w3']) arrive(state, name);
    state.maxConcurrent = 3; // reload with perBackend: 3
    state.queue!.drain(state);
    expect(log).toEqual(['w1: served', 'w2: served']);
    expect([state.inFlight, state.queued]).toEqual([3, 1]);
  });
});

describe('maxWait', () => {
  it('a waiter gets 503 exactly maxWait after it queued, and never a slot after that', () => {
    const state = backend({ perBackend: 1, maxWait: 1_000 });
    arrive(state, 'r1');
    arrive(state, 'w1');
    vi.advanceTimersByTime(999);
    expect(log).toEqual([]);
    expect(state.queued).toBe(1);
    vi.advanceTimersByTime(1);
    expect(log).toEqual(['w1: 503 wait expired']);
    expect(state.queued).toBe(0);
    state.releaseSlot();
    expect(log).toEqual(['w1: 503 wait expired']);
    expect(state.inFlight).toBe(0);
  });

  it("each waiter's clock starts when it queued", () => {
    const state = backend({ perBackend: 1, maxWait: 1_000 });
    arrive(state, 'r1');
    arrive(state, 'w1');
    vi.advanceTimersByTime(400);
    arrive(state, 'w2');
    vi.advanceTimersByTime(600);
    expect(log).toEqual(['w1: 503 wait expired']);
    vi.advanceTimersByTime(399);
    expect(log).toEqual(['w1: 503 wait expired']);
    vi.advanceTimersByTime(1);
    expect(log).toEqual(['w1: 503 wait expired', 'w2: 503 wait expired']);
  });

  it('a waiter served in time is not expired later, and leaves no timer', () => {
    const state = backend({ perBackend: 1, maxWait: 1_000 });
    arrive(state, 'r1');
    arrive(state, 'w1');
    vi.advanceTimersByTime(999);
    state.releaseSlot();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(log).toEqual(['w1: served']);
  });

  it('a new maxWait from a reload applies to requests that queue afterwards', () => {
    const state = backend({ perBackend: 1, queue: 3, maxWait: 1_000 });
    arrive(state, 'r1');
    arrive(state, 'old');
    state.queue!.policy = { perBackend: 1, queue: 3, maxWait: 5_000 };
    arrive(state, 'new');
    vi.advanceTimersByTime(1_000);
    expect(log).toEqual(['old: 503 wait expired']);
    vi.advanceTimersByTime(4_000);
    expect(log).toEqual(['old: 503 wait expired', 'new: 503 wait expired']);
  });
});

describe('leaving the queue', () => {
  it('a client that gives up is skipped, frees its place and its timer', () => {
    const state = backend({ perBackend: 1, queue: 2 });
    arrive(state, 'r1');
    const gone = state.queue!.add(waiter('gone', state))!;
    state.queue!.add(waiter('w2', state));
    state.queue!.cancel(gone);
    state.queue!.cancel(gone); // twice is harmless
    expect(state.queued).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    expect(arrive(state, 'w3')).toBe('queued');
    state.releaseSlot();
    expect(log).toEqual(['w2: served']);
  });

  it('shutdown tells every waiter, in order, that its wait is over', () => {
    const state = backend({ perBackend: 1, queue: 3 });
    for (const name of ['r1', 'w1', 'w2', 'w3']) arrive(state, name);
    state.shutdown();
    expect(log).toEqual(['w1: 503 wait expired', 'w2: 503 wait expired', 'w3: 503 wait expired']);
    expect(vi.getTimerCount()).toBe(0);
    expect([state.queued, state.maxConcurrent]).toEqual([0, Infinity]);
  });

  it('order survives thousands of waiters coming and going (internal compaction)', () => {
    const state = backend({ perBackend: 1, queue: 4, maxWait: 1_000 });
    arrive(state, 'r1');
    const served: number[] = [];
    let next = 0;
    for (let round = 0; round < 1_500; round++) {
      // Two join, one of them gives up, one expires now and then, one is served.
      const a = next++;
      const b = next++;
      const entryA = state.queue!.add({
        wake: () => {
          state.inFlight++;
          served.push(a);
          return true;
        },
        expire: () => undefined,
      })!;
      state.queue!.add({
        wake: () => {
          state.inFlight++;
          served.push(b);
          return true;
        },
        expire: () => undefined,
      });
      if (round % 2 === 0) state.queue!.cancel(entryA);
      state.releaseSlot();
      if (round % 7 === 0) vi.advanceTimersByTime(1_000);
    }
    expect(served.length).toBe(1_500); // one per freed slot
    // Every serve went to the oldest live waiter: served ids only ever increase.
    expect(served.every((id, i) => i === 0 || id > served[i - 1]!)).toBe(true);
    expect(state.queued).toBeLessThanOrEqual(4);
    expect(state.inFlight).toBe(1);
  });
});
