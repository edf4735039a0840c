// Rewrites on the way to the upstream: the path (strip / add / replace a prefix, or a template
// filled from the route's params) and request / response headers (set, remove).

import type { IncomingHttpHeaders } from 'node:http';
import type { z } from 'zod';
import type { headerOpsSchema, rewriteSchema } from '../config/schema/route-actions.js';
import { pathHasPrefix, type PathPattern, type RouteParams } from './path-pattern.js';

export type PathRewrite = (path: string, params: RouteParams) => string;

/** Prefix rewrite: strip then add. Paths keep their leading slash; the query is untouched. */
export function compilePrefixRewrite(
  stripPrefix: string | undefined,
  addPrefix: string | undefined,
  caseInsensitive = false,
): ((path: string) => string) | undefined {
  if (!stripPrefix && !addPrefix) return undefined;
  const strip = stripPrefix && stripPrefix !== '/' ? stripPrefix.replace(/\/+$/, '') : '';
  const add = addPrefix && addPrefix !== '/' ? addPrefix.replace(/\/+$/, '') : '';
  const stripped = caseInsensitive ? strip.toLowerCase() : strip;
  return (path: string) => {
    const rest = strip && pathHasPrefix(caseInsensitive ? path.toLowerCase() : path, stripped) ? path.slice(strip.length) : path;
    if (rest === '') return add || '/';
    return add + (rest.charCodeAt(0) === 47 ? rest : `/${rest}`);
  };
}

/** Kept for callers of the first route table. */
export const compileRewrite = compilePrefixRewrite;

/** "/v2/users/:id" filled from params, followed by what the match pattern did not cover. */
export function compileTemplateRewrite(template: string, pattern: PathPattern): PathRewrite {
  const parts = template === '/' ? [] : template.split('/').slice(1);
  const trailing = template.length > 1 && template.endsWith('/');
  if (trailing) parts.pop();
  return (path, params) => {
    let out = '';
    for (const part of parts) out += `/${part.charCodeAt(0) === 58 ? (params[part.slice(1)] ?? '') : part}`;
    const rest = pattern.exact ? '' : path.slice(pattern.matchedLength(path));
    const joined = out + rest;
    if (joined === '') return '/';
    return trailing && rest === '' ? `${joined}/` : joined;
  };
}

export function compilePathRewrite(
  rewrite: z.output<typeof rewriteSchema> | undefined,
  pattern: PathPattern,
  caseInsensitive = false,
): PathRewrite | undefined {
  if (!rewrite) return undefined;
  if (rewrite.path !== undefined) return compileTemplateRewrite(rewrite.path, pattern);
  const prefix = rewrite.replacePrefix
    ? compilePrefixRewrite(rewrite.replacePrefix.from, rewrite.replacePrefix.to, caseInsensitive)
    : compilePrefixRewrite(rewrite.stripPrefix, rewrite.addPrefix, caseInsensitive);
  return prefix ? (path) => prefix(path) : undefined;
}

export interface HeaderOps {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

export function compileHeaderOps(ops: z.output<typeof headerOpsSchema> | undefined): HeaderOps | undefined {
  if (!ops || (!ops.set && !ops.remove)) return undefined;
  return {
    set: Object.entries(ops.set ?? {}).map(([name, value]) => [name.toLowerCase(), value] as const),
    remove: (ops.remove ?? []).map((name) => name.toLowerCase()),
  };
}

/** Applies remove, then set, in place. */
export function applyHeaderOps(headers: IncomingHttpHeaders | Record<string, string | string[]>, ops: HeaderOps): void {
  const target = headers as Record<string, string | string[] | undefined>;
  for (const name of ops.remove) delete target[name];
  for (const [name, value] of ops.set) target[name] = value;
}
