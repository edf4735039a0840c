// Bounds V8's young generation (new space). Left alone, V8 doubles it under a high allocation
// rate up to 2 × 64 MiB on Node 24, and a proxy allocates fast: with 1,000 client connections
// the new space alone took more memory than the rest of the process. V8 reads
// --semi-space-growth-factor each time it decides to grow, so a timer switches growth off
// (factor 1) after any garbage collection once one more doubling would pass the cap, and back on
// when V8 has shrunk the new space again.
// SPILLWAY_YOUNG_GENERATION_MB sets the cap (default 16); 0 leaves V8's default behaviour.

import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const DEFAULT_CAP_MB = 16;

function capFrom(env: NodeJS.ProcessEnv): number {
  const raw = env.SPILLWAY_YOUNG_GENERATION_MB;
  const capMb = raw === undefined || raw.trim() === '' ? DEFAULT_CAP_MB : Number(raw);
  return Number.isFinite(capMb) && capMb > 0 ? capMb : 0;
}

// Module loading at start allocates fast enough to grow the new space to 32 MiB before any
// request arrives: growth starts switched off, as soon as this module is evaluated (main.ts
// imports it first), and the control loop below lets it grow up to the cap when traffic needs it.
if (capFrom(process.env) > 0) setFlagsFromString('--semi-space-growth-factor=1');

function newSpaceBytes(): number {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === 'new_space') return space.space_size;
  return 0;
}

/** Starts the control loop; returns the cap in MiB (0 = off). */
export function boundYoungGeneration(env: NodeJS.ProcessEnv): number {
  const capMb = capFrom(env);
  if (capMb === 0) return 0;
  const cap = capMb * 1024 * 1024;
  let growing = false;
  const adjust = () => {
    const grow = newSpaceBytes() * 2 <= cap;
    if (grow === growing) return;
    growing = grow;
    setFlagsFromString(grow ? '--semi-space-growth-factor=2' : '--semi-space-growth-factor=1');
  };
  new PerformanceObserver(adjust).observe({ entryTypes: ['gc'] });
  return capMb;
}
