// LLM answers keyed by their request: the JSON body (model, messages, parameters) normalised
// (object keys sorted, whitespace gone) and hashed. Only deterministic requests are cached: a
// sampled answer (temperature above 0) is a different answer every time.

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type BodyKey = { readonly hash: string } | { readonly skip: 'not-json' | 'not-deterministic' };

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    return `{${keys
      .filter((key) => record[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The normalised JSON text of a body, or undefined when it is not a JSON object. */
export function normaliseJsonBody(body: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return canonical(parsed);
}

function isDeterministic(text: string, headers: IncomingHttpHeaders, deterministicHeader: string | undefined): boolean {
  if (deterministicHeader !== undefined) {
    const value = headers[deterministicHeader];
    const flag = Array.isArray(value) ? value[0] : value;
    if (flag !== undefined && flag !== 'false' && flag !== '0') return true;
  }
  const parsed = JSON.parse(text) as { temperature?: unknown };
  return parsed.temperature === 0;
}

/** The body's key part, or why this request is not cached. */
export function bodyKey(body: Buffer, headers: IncomingHttpHeaders, deterministicHeader: string | undefined): BodyKey {
  const text = normaliseJsonBody(body);
  if (text === undefined) return { skip: 'not-json' };
  if (!isDeterministic(text, headers, deterministicHeader)) return { skip: 'not-deterministic' };
  return { hash: createHash('sha256').update(text).digest('base64url') };
}
