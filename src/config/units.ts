// Human units used across the YAML: durations ("250ms", "10s", "5m", "1h", "1h2m3.5s") and sizes
// ("64kb", "1mb"; binary multiples, so 1mb = 1 MiB). Parsing returns undefined on bad input so the
// schema can report the exact field instead of throwing.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Parses a duration such as "250ms", "10s", "1h2m3.5s" into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const input = text.trim().toLowerCase();
  if (input === '0') return 0;
  if (input.length === 0) return undefined;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < input.length) {
    const start = DURATION_PART.lastIndex;
    const match = DURATION_PART.exec(input);
    if (!match || match.index !== start) return undefined;
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  k: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses a size such as "64kb" or "1mb" (binary multiples) into bytes. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] ?? '').toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) return undefined;
  return Math.floor(Number(match[1]) * factor);
}

/** Formats milliseconds back into the shortest exact duration text, for admin output and errors. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
