// The compiled route table: rules in the order written, first match wins.

import type { CompiledMatch } from './matchers.js';
import type { RouteParams } from './path-pattern.js';
import type { RequestView } from './request-view.js';

export { pathHasPrefix } from './path-pattern.js';

export interface MatchableRoute {
  readonly match: CompiledMatch;
}

export interface RouteMatch<R> {
  route: R;
  /** Values of the pattern's ":name" segments (percent-encoding of reserved characters kept). */
  params: RouteParams;
}

export function matchRoute<R extends MatchableRoute>(routes: readonly R[], request: RequestView): RouteMatch<R> | undefined {
  for (const route of routes) {
    const params = route.match.test(request);
    if (params !== undefined) return { route, params };
  }
  return undefined;
}
