// Paced release of held requests (throttle.hold). When a cooling backend is ready again, the
// held burst must not trip it in the first millisecond: at most what each ready backend can take
// now (its learned capacity, state/backend-capacity.ts) is released; the rest stays held and is
// looked at again when answers come in, when a backend is ready again, or shortly after.

import { isReady, poolBlock } from '../balance/select.js';
import type { CompiledUpstream } from '../snapshot/snapshot.js';

/** How soon a pool with a ready backend but no room left is looked at again. */
const REPACE_MS = 25;

/** Releases what the ready backends of `upstream` can take now; schedules the next look. */
export function releaseHeld(upstream: CompiledUpstream, now: number): void {
  const hold = upstream.hold;
  if (hold === undefined || hold.queue.size === 0) return;
  const { queue } = hold;
  let room = 0;
  let ready = false;
  let inFlight = 0;
  for (const backend of upstream.backends) {
    if (!isReady(backend, now)) continue;
    ready = true;
    const { state } = backend;
    inFlight += state.inFlight;
    // Unknown capacity (never throttled): one at a time, as a probe.
    room += state.capacity.allowance(state.inFlight) ?? (state.inFlight === 0 ? 1 : 0);
  }
  // Capacity spent by the estimate but nothing in flight to learn from: probe with one.
  if (ready && room === 0 && inFlight === 0) room = 1;
  while (room > 0 && queue.releaseOne()) room--;
  if (queue.size === 0) return;
  if (ready) {
    queue.wakeAt(now + REPACE_MS, now);
    return;
  }
  const block = poolBlock(upstream.backends, now);
  queue.wakeAt(block.kind === 'throttled' || block.kind === 'unavailable' ? block.readyAt : now + REPACE_MS, now);
}
