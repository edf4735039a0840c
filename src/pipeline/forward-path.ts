// The path a backend is sent: the path as the client spelled it once normalised (";" parameters
// kept), through the route's rewrite. A rewrite works on the forwarded form when the route's
// pattern matches it too, else on the form the rules matched (";…" inside the pattern's prefix
// is then dropped, since the prefix cannot be cut from a path that does not start with it).

import type { RouteParams } from '../routing/path-pattern.js';
import type { ReadTarget } from '../routing/target.js';
import type { CompiledRoute } from '../snapshot/snapshot.js';

export function forwardPathOf(route: CompiledRoute, target: ReadTarget, params: RouteParams): string {
  if (!route.rewrite) return target.forward + target.query;
  if (target.forward === target.match) return route.rewrite(target.match, params) + target.query;
  const own = route.match.path.match(target.forward);
  return (own !== undefined ? route.rewrite(target.forward, own) : route.rewrite(target.match, params)) + target.query;
}
