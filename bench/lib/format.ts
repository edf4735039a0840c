// Number formatting and markdown tables.

import type { Spread } from './stats.ts';

export const mb = (kb: number | undefined): number | undefined => (kb === undefined ? undefined : Math.round((kb / 1024) * 10) / 10);

export function fmt(value: unknown, digits = 1): string {
  if (value === undefined || value === null || (typeof value === 'number' && Number.isNaN(value))) return '–';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value) && Math.abs(value) >= 1000) return value.toLocaleString('en-US');
  if (Number.isInteger(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const pct = (fraction: number | undefined, digits = 1): string =>
  fraction === undefined || Number.isNaN(fraction) ? '–' : `${(fraction * 100).toFixed(digits)}%`;

export const signedPct = (fraction: number | undefined, digits = 1): string =>
  fraction === undefined || Number.isNaN(fraction) ? '–' : `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(digits)}%`;

/** `+1.2 ms` / `-0.4 ms`. */
export const signedMs = (v: number): string => `${v >= 0 ? '+' : ''}${fmt(v, 1)} ms`;

/** `median [min–max]`, or just the median when there was one round. */
export function spreadText(s: Spread | undefined, digits = 0): string {
  if (!s || s.median === undefined) return '–';
  const round = (x: number | undefined): string => fmt(x === undefined ? undefined : digits === 0 ? Math.round(x) : x, digits);
  return s.values.length > 1 ? `${round(s.median)} [${round(s.min)}–${round(s.max)}]` : round(s.median);
}

export function table(header: string[], rows: unknown[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ':---' : '---:')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map((cell) => String(cell).replaceAll('|', '\\|')).join(' | ')} |`);
  return lines.join('\n');
}
