// Writes a route's static `respond` answer (compiled in routing/respond.ts).

import type { ServerResponse } from 'node:http';
import type { RouteParams } from '../routing/path-pattern.js';
import type { CompiledRespond } from '../routing/respond.js';

export function sendStatic(res: ServerResponse, respond: CompiledRespond, method: string, params: RouteParams, query: string): void {
  const headers: Record<string, string | number> = { ...respond.headers, 'content-length': respond.body?.length ?? 0 };
  if (respond.location) headers.location = respond.location(params, query);
  res.writeHead(respond.status, headers);
  res.end(method === 'HEAD' ? undefined : respond.body);
}
