// Path patterns: a literal prefix or exact path, or a template with ":name" segments whose
// values become the route's params. Matching runs on the normalised path.

import { patternSegments } from '../config/path-template.js';

export type RouteParams = Readonly<Record<string, string>>;

export const NO_PARAMS: RouteParams = Object.freeze({});

export interface PathPattern {
  readonly source: string;
  readonly exact: boolean;
  readonly paramNames: readonly string[];
  /** The params when `path` matches (NO_PARAMS for literal patterns), else undefined. */
  match(path: string): RouteParams | undefined;
  /** How many characters of `path` (which matched) the pattern covers; the rest follows it. */
  matchedLength(path: string): number;
}

/** True when `path` (no query) starts with `prefix` on a segment boundary. */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length) return true;
  return prefix.endsWith('/') || path.charCodeAt(prefix.length) === 47 /* / */;
}

/** `caseInsensitive`: literal segments match in any case (params keep the case sent). */
export function compilePathPattern(source: string, exact: boolean, caseInsensitive = false): PathPattern {
  const segments = patternSegments(source).map((s) => (caseInsensitive && !s.startsWith(':') ? s.toLowerCase() : s));
  const paramNames = segments.filter((s) => s.startsWith(':')).map((s) => s.slice(1));
  if (paramNames.length === 0) {
    const literal = caseInsensitive ? source.toLowerCase() : source;
    const fold = caseInsensitive ? (path: string) => path.toLowerCase() : (path: string) => path;
    return {
      source,
      exact,
      paramNames,
      match: exact
        ? (path) => (fold(path) === literal ? NO_PARAMS : undefined)
        : (path) => (pathHasPrefix(fold(path), literal) ? NO_PARAMS : undefined),
      matchedLength: () => (literal === '/' ? 0 : literal.replace(/\/+$/, '').length),
    };
  }
  const walk = (path: string): { params: Record<string, string>; length: number } | undefined => {
    const parts = path.split('/');
    // parts[0] is "" (before the leading slash)
    if (parts.length - 1 < segments.length) return undefined;
    if (exact && parts.length - 1 !== segments.length) return undefined;
    const params: Record<string, string> = {};
    let length = 0;
    for (let i = 0; i < segments.length; i++) {
      const want = segments[i]!;
      const got = parts[i + 1]!;
      if (want.charCodeAt(0) === 58 /* : */) {
        if (got === '') return undefined;
        params[want.slice(1)] = got;
      } else if (want !== (caseInsensitive ? got.toLowerCase() : got)) {
        return undefined;
      }
      length += 1 + got.length;
    }
    return { params, length };
  };
  return {
    source,
    exact,
    paramNames,
    match: (path) => walk(path)?.params,
    matchedLength: (path) => walk(path)?.length ?? 0,
  };
}
