// Reads "come back later" hints from a backend response. The most precise hint wins:
//   1. retry-after-ms / x-ms-retry-after-ms (milliseconds; Azure OpenAI sends them beside a
//      whole-second Retry-After, which would otherwise round every cooldown up)
//   2. Retry-After: delay-seconds (a decimal is tolerated) or an HTTP-date (RFC 9110 §10.2.3)
//   3. the largest of the IETF draft RateLimit field's t=, RateLimit-Reset, and OpenAI's
//      x-ratelimit-reset-requests / x-ratelimit-reset-tokens Go durations ("6m0s", "250ms").
// A malformed hint is treated as absent; nothing here throws.

export type HeaderValue = string | string[] | undefined;
export type ResponseHeaders = Record<string, HeaderValue>;

export interface RetryHint {
  /** Delay from `now` in milliseconds (>= 0). */
  delayMs: number;
  /** The header the delay came from, e.g. "retry-after-ms". */
  source: string;
  /** The raw header value, for logs and the admin view. */
  value: string;
}

const MS_HEADERS = ['retry-after-ms', 'x-ms-retry-after-ms'] as const;
const RESET_HEADERS = ['x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens'] as const;
const DECIMAL = /^\d+(?:\.\d+)?$/;
const GO_DURATION =
  /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?(?:(\d+(?:\.\d+)?)(?:us|µs))?(?:(\d+(?:\.\d+)?)ns)?$/;

function first(value: HeaderValue): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** Parses a non-negative decimal number of a unit; undefined when malformed. */
function parseDecimal(text: string, unitMs: number): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = Number(text) * unitMs;
  return Number.isFinite(value) ? value : undefined;
}

/** Retry-After: delay-seconds or HTTP-date. */
export function parseRetryAfter(text: string, now: number): number | undefined {
  const seconds = parseDecimal(text, 1000);
  if (seconds !== undefined) return seconds;
  // An HTTP-date always names a weekday or month; refuse bare numbers-with-junk that Date.parse accepts.
  if (!/[a-z]{3}/i.test(text) || text.length > 64) return undefined;
  // Every HTTP-date is UTC (RFC 9110 §5.6.7); the obsolete asctime form names no zone, and
  // Date.parse would read it in the host's local time.
  const at = Date.parse(/\b(GMT|UTC|UT)\b|[+-]\d{4}$/i.test(text) ? text : `${text} GMT`);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - now);
}

/** Go's time.Duration text as OpenAI sends it: "1s", "6m0s", "250ms", "1h2m3.5s". */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const match = GO_DURATION.exec(text);
  if (!match || text === '') return undefined;
  const [, h, m, s, ms, us, ns] = match;
  if (h === undefined && m === undefined && s === undefined && ms === undefined && us === undefined && ns === undefined) return undefined;
  const total =
    Number(h ?? 0) * 3_600_000 +
    Number(m ?? 0) * 60_000 +
    Number(s ?? 0) * 1000 +
    Number(ms ?? 0) +
    Number(us ?? 0) / 1000 +
    Number(ns ?? 0) / 1e6;
  return Number.isFinite(total) ? total : undefined;
}

/**
 * The draft RateLimit field: `"policy";r=0;t=3` (draft-ietf-httpapi-ratelimit-headers-08+, possibly
 * several comma-separated items) or the older `limit=10, remaining=0, reset=3`. Returns the largest
 * t= / reset= in seconds, as milliseconds.
 */
export function parseRateLimitField(text: string): number | undefined {
  let largest: number | undefined;
  for (const match of text.matchAll(/(?:^|[;,\s])(t|reset)\s*=\s*([^;,\s]+)/gi)) {
    const ms = parseDecimal(match[2]!, 1000);
    if (ms !== undefined && (largest === undefined || ms > largest)) largest = ms;
  }
  return largest;
}

/** Returns the most precise retry hint present in the headers, or undefined. */
export function readRetryHint(headers: ResponseHeaders, now: number): RetryHint | undefined {
  for (const name of MS_HEADERS) {
    const value = first(headers[name]);
    if (value === undefined) continue;
    const delayMs = parseDecimal(value, 1);
    if (delayMs !== undefined) return { delayMs, source: name, value };
  }

  const retryAfter = first(headers['retry-after']);
  if (retryAfter !== undefined) {
    const delayMs = parseRetryAfter(retryAfter, now);
    if (delayMs !== undefined) return { delayMs, source: 'retry-after', value: retryAfter };
  }

  let best: RetryHint | undefined;
  const consider = (source: string, value: string | undefined, parse: (text: string) => number | undefined) => {
    if (value === undefined) return;
    const delayMs = parse(value);
    if (delayMs !== undefined && (best === undefined || delayMs > best.delayMs)) best = { delayMs, source, value };
  };
  consider('ratelimit', first(headers.ratelimit), parseRateLimitField);
  consider('ratelimit-reset', first(headers['ratelimit-reset']), (text) => parseDecimal(text, 1000));
  for (const name of RESET_HEADERS) consider(name, first(headers[name]), parseGoDuration);
  return best;
}
