import type { RouteConfig } from './route.js';

/** Every upstream a route names, with where it is named (for "unknown upstream" errors). */
export function routeUpstreamRefs(route: RouteConfig): Array<{ name: string; path: Array<string | number> }> {
  const refs: Array<{ name: string; path: Array<string | number> }> = [];
  if (route.upstream !== undefined) refs.push({ name: route.upstream, path: ['upstream'] });
  for (const [index, entry] of (route.split ?? []).entries()) refs.push({ name: entry.upstream, path: ['split', index, 'upstream'] });
  if (route.mirror) refs.push({ name: route.mirror.upstream, path: ['mirror', 'upstream'] });
  return refs;
}
