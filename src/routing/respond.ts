// The `respond` action: a static answer from the gateway (410 for a retired endpoint, a
// redirect to where it moved), compiled once; pipeline/respond.ts writes it. No upstream is called.

import type { z } from 'zod';
import type { respondSchema } from '../config/schema/route-actions.js';
import type { RouteParams } from './path-pattern.js';

export interface CompiledRespond {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  /** Location from params and the query, for redirects. */
  readonly location: ((params: RouteParams, query: string) => string) | undefined;
}

export function compileRespond(respond: z.output<typeof respondSchema>): CompiledRespond {
  const headers: Record<string, string> = {};
  let body: Buffer | undefined;
  if (typeof respond.body === 'string') {
    body = Buffer.from(respond.body);
    headers['content-type'] = 'text/plain; charset=utf-8';
  } else if (respond.body !== undefined) {
    body = Buffer.from(JSON.stringify(respond.body));
    headers['content-type'] = 'application/json';
  }
  for (const [name, value] of Object.entries(respond.headers ?? {})) headers[name.toLowerCase()] = value;
  let location: CompiledRespond['location'];
  if (respond.redirect !== undefined) {
    const target = respond.redirect;
    location = (params, query) => {
      const filled = target.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name: string) => params[name] ?? whole);
      if (!query) return filled;
      return filled.includes('?') ? `${filled}&${query.slice(1)}` : filled + query;
    };
  }
  return { status: respond.status ?? (location ? 302 : 200), headers, body, location };
}
