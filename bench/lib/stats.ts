// Small statistics over the rounds of a run.

export interface Spread {
  median: number | undefined;
  min: number | undefined;
  max: number | undefined;
  /** Every round's value, in round order. */
  values: number[];
}

export const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
export const mean = (values: number[]): number | undefined => (values.length ? sum(values) / values.length : undefined);

export function median(values: number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

export function spread(values: (number | undefined)[]): Spread {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return { median: median(v), min: v.length ? Math.min(...v) : undefined, max: v.length ? Math.max(...v) : undefined, values: v };
}

export function percentile(sorted: number[], p: number): number | undefined {
  if (!sorted.length) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** b / a − 1, or undefined when either is missing. */
export const relDiff = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || a === 0 ? undefined : b / a - 1;
