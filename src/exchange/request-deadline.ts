// The retry block's deadline over every attempt of one request: when it passes before an answer
// has started, the request is answered 504 `deadline-exceeded` and no further attempt is made.

import type { CompiledUpstream } from '../snapshot/snapshot.js';
import type { ResponseSink } from './sink.js';

export class RequestDeadline {
  /** Epoch ms bounding all attempts; 0 = none. */
  at = 0;
  /** The deadline passed before a response started: the request has been answered 504. */
  passed = false;
  #timer: NodeJS.Timeout | undefined;

  /** Starts the clock (`ms` > 0); `onPass` runs once when it passes, unless cleared first. */
  start(ms: number, now: number, onPass: () => void): void {
    this.at = now + ms;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      onPass();
    }, ms);
  }

  /** The answer started (or the client left): the clock stops. */
  clear(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** True when a deadline is set and `now` is at or past it. */
  over(now: number): boolean {
    return this.at !== 0 && now >= this.at;
  }
}

export function answerDeadlineExceeded(sink: ResponseSink, upstream: CompiledUpstream): void {
  sink.problem('deadline-exceeded', `${upstream.name}: no response within the request deadline`, {
    extensions: { upstream: upstream.name },
  });
}
