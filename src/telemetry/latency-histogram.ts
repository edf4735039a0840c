// A small fixed-bucket latency histogram (milliseconds) for the console: cumulative counts that a
// sampler subtracts to get a window, and quantiles read from such a window.

/** Upper bounds of the buckets in ms; the last bucket takes everything above. */
export const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, Infinity] as const;

export function emptyHistogram(): number[] {
  return new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
}

export function bucketIndex(ms: number): number {
  let i = 0;
  while (ms > LATENCY_BOUNDS_MS[i]!) i++;
  return i;
}

/** later − earlier, bucket by bucket (a missing earlier counts as empty). */
export function subtractHistogram(later: readonly number[], earlier: readonly number[] | undefined): number[] {
  return later.map((count, i) => count - (earlier?.[i] ?? 0));
}

/**
 * The q-quantile (0..1) of a window, interpolated linearly inside its bucket; null when the window
 * is empty. The open last bucket answers its lower bound (the estimate cannot see past it).
 */
export function quantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i]!;
    if (count === 0) continue;
    if (seen + count >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const upper = LATENCY_BOUNDS_MS[i]!;
      if (!Number.isFinite(upper)) return lower;
      const inside = Math.max(0, rank - seen) / count;
      return Math.round((lower + (upper - lower) * inside) * 10) / 10;
    }
    seen += count;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 2]!;
}
