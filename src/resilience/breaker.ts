// A circuit breaker for one backend. opossum keeps the rolling window (buckets), the failure-rate
// and minimum-volume decision, and the open → half-open timer; this wrapper adds what opossum
// lacks: several half-open trial requests, and outcomes recorded when they are known (an attempt
// is not a promise here — it ends in an undici handler callback).
//
// Only what the exchange classifies as a failure reaches it: configured 5xx, timeouts, connection
// errors. Throttling (429 cooldowns) and other 4xx are never recorded — see decision 003.

import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { BreakerState } from '../core/events.js';
import type { BreakerPolicy } from './policy.js';

export type BreakerVerdict = 'success' | 'failure' | 'neutral';

const BUCKETS = 10;
const FAILED = Object.assign(new Error('backend failure'), { code: 'SPILLWAY_BACKEND_FAILURE' });
const record = (ok: boolean): Promise<void> => (ok ? Promise.resolve() : Promise.reject(FAILED));
const ignore = (): void => undefined;

export class BackendBreaker {
  state: BreakerState = 'closed';
  /** Epoch ms of the last transition to open (0 when never opened). */
  openedAt = 0;
  #generation = 0;
  #trialsAdmitted = 0;
  #trialSuccesses = 0;
  readonly #circuit: CircuitBreaker<[boolean], void>;
  readonly #rotate = new EventEmitter();
  readonly #rotateTimer: NodeJS.Timeout;
  #fromPeer = false;

  constructor(
    readonly policy: BreakerPolicy,
    /** `fromPeer`: the transition was a peer's opening applied here (openFromPeer), not learnt locally. */
    private readonly onChange: (state: BreakerState, fromPeer: boolean) => void,
  ) {
    this.#circuit = new CircuitBreaker(record, {
      timeout: false,
      resetTimeout: policy.openFor,
      errorThresholdPercentage: policy.failureRate * 100,
      volumeThreshold: policy.minRequests,
      rollingCountTimeout: policy.window,
      rollingCountBuckets: BUCKETS,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: this.#rotate,
    });
    // Buckets rotate on our own timer so a closing breaker can start from an empty window.
    this.#rotateTimer = setInterval(() => this.#rotate.emit('rotate'), Math.max(1, Math.floor(policy.window / BUCKETS)));
    this.#rotateTimer.unref();
    this.#circuit.on('open', () => this.#transition('open'));
    this.#circuit.on('halfOpen', () => this.#transition('half-open'));
    this.#circuit.on('close', () => {
      for (let i = 0; i < BUCKETS; i++) this.#rotate.emit('rotate');
      this.#transition('closed');
    });
  }

  /** May a request be sent now? Closed: yes. Half-open: while trial slots are left. */
  canPass(): boolean {
    return this.state === 'closed' || (this.state === 'half-open' && this.#trialsAdmitted < this.policy.halfOpenRequests);
  }

  /** Epoch ms when an open breaker lets trials through (0 unless open). */
  get halfOpenAt(): number {
    return this.state === 'open' ? this.openedAt + this.policy.openFor : 0;
  }

  /** Call when an attempt is sent; hand the returned ticket to end(). */
  begin(): number {
    const trial = this.state === 'half-open';
    if (trial) this.#trialsAdmitted++;
    return this.#generation * 2 + (trial ? 1 : 0);
  }

  /** Records how an attempt went. Outcomes from before the last state change are dropped. */
  end(ticket: number, verdict: BreakerVerdict): void {
    if (ticket >> 1 !== this.#generation) return;
    if ((ticket & 1) === 0) {
      if (verdict !== 'neutral' && this.state === 'closed') this.#circuit.fire(verdict === 'success').catch(ignore);
      return;
    }
    if (verdict === 'neutral') {
      this.#trialsAdmitted--;
    } else if (verdict === 'failure') {
      this.#circuit.open();
    } else if (++this.#trialSuccesses >= this.policy.halfOpenRequests) {
      this.#circuit.close();
    }
  }

  /** A passing active health probe closes an open (or half-open) breaker without spending user requests. */
  closeEarly(): void {
    if (this.state !== 'closed') this.#circuit.close();
  }

  /**
   * A peer (another replica or worker) saw this backend fail enough to open its breaker: open
   * here too rather than spend minRequests failures learning it again. Open for `openFor`.
   */
  openFromPeer(): void {
    if (this.state === 'open') return;
    this.#fromPeer = true;
    try {
      this.#circuit.open();
    } finally {
      this.#fromPeer = false;
    }
  }

  shutdown(): void {
    clearInterval(this.#rotateTimer);
    this.#circuit.shutdown();
  }

  #transition(state: BreakerState): void {
    this.#generation++;
    this.#trialsAdmitted = 0;
    this.#trialSuccesses = 0;
    if (state === 'open') this.openedAt = Date.now();
    if (this.state === state) return;
    this.state = state;
    this.onChange(state, this.#fromPeer);
  }
}
