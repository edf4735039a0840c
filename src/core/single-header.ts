// A header that names a client (an API key, a rate-limit key) must be sent once: Node joins
// repeated headers with ", ", which would turn two keys into a third, unknown one.

import type { IncomingMessage } from 'node:http';

export const REPEATED = Symbol('repeated header');

/** The header's value when sent once, undefined when absent, REPEATED when sent more than once. */
export function singleHeader(req: IncomingMessage, name: string): string | undefined | typeof REPEATED {
  const value = req.headers[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 1 ? value[0] : REPEATED;
  // Fast path: a joined value has a comma; only then count the raw lines.
  if (!value.includes(',')) return value;
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) seen++;
  return seen > 1 ? REPEATED : value;
}
