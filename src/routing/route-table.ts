// The compiled route table: rules in the order written, first match wins.

export interface RouteMatcher {
  /** Path prefix matched on whole segments ("/" matches everything). */
  pathPrefix: string;
  methods: ReadonlySet<string> | undefined;
}

export interface MatchableRoute {
  readonly matcher: RouteMatcher;
}

/** True when `path` (no query) starts with `prefix` on a segment boundary. */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length) return true;
  return prefix.endsWith('/') || path.charCodeAt(prefix.length) === 47 /* / */;
}

export function matchRoute<R extends MatchableRoute>(routes: readonly R[], method: string, path: string): R | undefined {
  for (const route of routes) {
    const { matcher } = route;
    if (matcher.methods && !matcher.methods.has(method)) continue;
    if (!pathHasPrefix(path, matcher.pathPrefix)) continue;
    return route;
  }
  return undefined;
}

/** Prefix rewrite: strip then add. Paths keep their leading slash; the query is untouched. */
export function compileRewrite(stripPrefix: string | undefined, addPrefix: string | undefined): ((path: string) => string) | undefined {
  if (!stripPrefix && !addPrefix) return undefined;
  const strip = stripPrefix && stripPrefix !== '/' ? stripPrefix.replace(/\/+$/, '') : '';
  const add = addPrefix && addPrefix !== '/' ? addPrefix.replace(/\/+$/, '') : '';
  return (path: string) => {
    const rest = strip && pathHasPrefix(path, strip) ? path.slice(strip.length) : path;
    if (rest === '') return add || '/';
    return add + (rest.charCodeAt(0) === 47 ? rest : `/${rest}`);
  };
}
