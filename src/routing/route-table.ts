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

/**
 * The first rule that matches. A rule with body conditions, reached while the body is unread,
 * stops the walk (undefined, with `request.bodyWanted` set): the caller reads the body
 * (request.setBody) and asks again — only requests that reach such a rule have their body read
 * before routing.
 */
export function matchRoute<R extends MatchableRoute>(routes: readonly R[], request: RequestView): RouteMatch<R> | undefined {
  for (const route of routes) {
    const params = route.match.test(request);
    if (params !== undefined) return { route, params };
    if (request.bodyWanted && !request.bodyRead) return undefined;
  }
  return undefined;
}
