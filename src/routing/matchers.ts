// Compiles a route's `match` into one test: path pattern first (cheap), then method, host and
// the header / query / cookie conditions.

import type { MatchConfig, ValueMatchConfig } from '../config/schema/match.js';
import { compilePathPattern, type PathPattern, type RouteParams } from './path-pattern.js';
import type { RequestView } from './request-view.js';

export type ValueTest = (value: string | undefined) => boolean;

export function compileValueMatch(condition: ValueMatchConfig): ValueTest {
  if (typeof condition === 'string') return (value) => value === condition;
  if (condition.equals !== undefined) {
    const want = condition.equals;
    return (value) => value === want;
  }
  if (condition.regex !== undefined) {
    const regex = new RegExp(condition.regex);
    return (value) => value !== undefined && regex.test(value);
  }
  if (condition.absent || condition.present === false) return (value) => value === undefined;
  return (value) => value !== undefined;
}

export type HostTest = (host: string) => boolean;

export function compileHostMatch(hosts: string | string[]): HostTest {
  const list = (Array.isArray(hosts) ? hosts : [hosts]).map((h) => h.trim().toLowerCase());
  const exact = new Set(list.filter((h) => !h.startsWith('*.')));
  const suffixes = list.filter((h) => h.startsWith('*.')).map((h) => h.slice(1));
  return (host) => exact.has(host) || suffixes.some((suffix) => host.endsWith(suffix) && host.length > suffix.length);
}

export interface CompiledMatch {
  readonly path: PathPattern;
  readonly methods: ReadonlySet<string> | undefined;
  /** True when the rule has body conditions (the body must be read to decide). */
  readonly needsBody: boolean;
  /**
   * The route's params when the request matches, else undefined. A rule with body conditions met
   * while the body is unread answers undefined and sets `request.bodyWanted`: the caller reads the
   * body (request.setBody) and matches again.
   */
  test(request: RequestView): RouteParams | undefined;
}

/** `caseInsensitive` (from `paths.caseInsensitive`): the path pattern matches in any case. */
export function compileMatch(match: MatchConfig, caseInsensitive = false): CompiledMatch {
  const path = compilePathPattern(match.exact ?? match.path ?? '/', match.exact !== undefined, caseInsensitive);
  const methods = match.methods ? new Set<string>(match.methods) : undefined;
  const host = match.host !== undefined ? compileHostMatch(match.host) : undefined;
  const conditions: Array<(request: RequestView) => boolean> = [];
  for (const [name, condition] of Object.entries(match.headers ?? {})) {
    const test = compileValueMatch(condition);
    const lower = name.toLowerCase();
    conditions.push((request) => test(request.header(lower)));
  }
  for (const [name, condition] of Object.entries(match.query ?? {})) {
    const test = compileValueMatch(condition);
    conditions.push((request) => test(request.queryParam(name)));
  }
  for (const [name, condition] of Object.entries(match.cookies ?? {})) {
    const test = compileValueMatch(condition);
    conditions.push((request) => test(request.cookie(name)));
  }
  const bodyConditions: Array<(request: RequestView) => boolean> = [];
  for (const [name, condition] of Object.entries(match.body ?? {})) {
    const test = compileValueMatch(condition);
    const path = name.split('.');
    bodyConditions.push((request) => test(request.bodyField(path)));
  }
  return {
    path,
    methods,
    needsBody: bodyConditions.length > 0,
    test(request) {
      const params = path.match(request.path);
      if (params === undefined) return undefined;
      if (methods && !methods.has(request.method)) return undefined;
      if (host && !host(request.host)) return undefined;
      for (const condition of conditions) if (!condition(request)) return undefined;
      if (bodyConditions.length > 0) {
        if (!request.bodyRead) {
          request.bodyWanted = true;
          return undefined;
        }
        for (const condition of bodyConditions) if (!condition(request)) return undefined;
      }
      return params;
    },
  };
}
