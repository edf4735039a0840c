// Reads what a backend says it has left, from any answer (not only 429s): OpenAI / Azure OpenAI
// x-ratelimit-remaining-requests|tokens with x-ratelimit-reset-requests|tokens (Go durations,
// "6m0s", "250ms") and x-ratelimit-limit-*, and the IETF draft RateLimit field (`r=` remaining,
// `t=` seconds to reset; an item whose name mentions "token" counts tokens, others requests).
// Malformed values are ignored; nothing here throws.

import { parseGoDuration, type ResponseHeaders } from './retry-hints.js';

export interface BudgetReading {
  readonly remaining: number;
  /** Milliseconds until the budget is whole again; undefined when not said. */
  readonly resetMs: number | undefined;
  readonly limit: number | undefined;
}

export interface CapacityReading {
  readonly requests: BudgetReading | undefined;
  readonly tokens: BudgetReading | undefined;
}

function first(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined ? undefined : text.trim();
}

function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** A reset as OpenAI sends it ("1s", "6m0s", "120ms") or as bare seconds ("20"). */
function reset(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const seconds = count(text);
  return seconds !== undefined ? seconds * 1000 : parseGoDuration(text);
}

function openAiBudget(headers: ResponseHeaders, kind: 'requests' | 'tokens'): BudgetReading | undefined {
  const remaining = count(first(headers[`x-ratelimit-remaining-${kind}`]));
  if (remaining === undefined) return undefined;
  return {
    remaining,
    resetMs: reset(first(headers[`x-ratelimit-reset-${kind}`])),
    limit: count(first(headers[`x-ratelimit-limit-${kind}`])),
  };
}

/** The RateLimit field's items: `"name";r=0;t=3`, several comma-separated. */
function ietfBudgets(text: string): { requests?: BudgetReading; tokens?: BudgetReading } {
  const out: { requests?: BudgetReading; tokens?: BudgetReading } = {};
  for (const item of text.split(',')) {
    const r = /(?:^|;)\s*r\s*=\s*(\d+)/i.exec(item);
    if (!r) continue;
    const t = /(?:^|;)\s*t\s*=\s*(\d+(?:\.\d+)?)/i.exec(item);
    const reading: BudgetReading = { remaining: Number(r[1]), resetMs: t ? Number(t[1]) * 1000 : undefined, limit: undefined };
    const kind = /token/i.test(item.split(';')[0] ?? '') ? 'tokens' : 'requests';
    const known = out[kind];
    if (!known || reading.remaining < known.remaining) out[kind] = reading;
  }
  return out;
}

/** The backend's announced budgets, or undefined when the answer carries none. */
export function readCapacity(headers: ResponseHeaders): CapacityReading | undefined {
  let requests = openAiBudget(headers, 'requests');
  let tokens = openAiBudget(headers, 'tokens');
  const field = first(headers.ratelimit);
  if (field !== undefined && (requests === undefined || tokens === undefined)) {
    const ietf = ietfBudgets(field);
    requests ??= ietf.requests;
    tokens ??= ietf.tokens;
  }
  return requests === undefined && tokens === undefined ? undefined : { requests, tokens };
}

/** Cheap test before parsing: does the answer carry any budget header? */
export function hasCapacityHeaders(headers: ResponseHeaders): boolean {
  return (
    headers['x-ratelimit-remaining-requests'] !== undefined ||
    headers['x-ratelimit-remaining-tokens'] !== undefined ||
    headers.ratelimit !== undefined
  );
}
