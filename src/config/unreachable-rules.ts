// Shadow detection for `spillway check` and at load: a rule can never match when an earlier
// rule matches every request it would. The check is conservative — it only warns when it is
// sure (same or wider path, method, host, and no condition the earlier rule adds).

import { isDeepStrictEqual } from 'node:util';
import type { MatchConfig } from './schema/match.js';
import type { RouteConfig } from './schema/route.js';
import { patternSegments } from './path-template.js';

export interface RouteWarning {
  index: number;
  message: string;
}

function pathCovers(a: MatchConfig, b: MatchConfig): boolean {
  const aPattern = a.exact ?? a.path ?? '/';
  const bPattern = b.exact ?? b.path ?? '/';
  const aSegments = patternSegments(aPattern);
  const bSegments = patternSegments(bPattern);
  if (a.exact !== undefined) {
    if (b.exact === undefined || aSegments.length !== bSegments.length) return false;
    if (aPattern.endsWith('/') !== bPattern.endsWith('/')) return false;
  } else {
    if (bSegments.length < aSegments.length) return false;
    // "/v1/" (trailing slash) does not match "/v1" itself.
    if (aPattern.length > 1 && aPattern.endsWith('/') && bSegments.length === aSegments.length && !bPattern.endsWith('/')) return false;
  }
  return aSegments.every((segment, i) => {
    const other = bSegments[i]!;
    if (segment.startsWith(':')) return true;
    return !other.startsWith(':') && other === segment;
  });
}

function hostsOf(host: string | string[] | undefined): string[] | undefined {
  return host === undefined ? undefined : (Array.isArray(host) ? host : [host]).map((h) => h.toLowerCase());
}

function hostCovers(a: MatchConfig, b: MatchConfig): boolean {
  const aHosts = hostsOf(a.host);
  if (!aHosts) return true;
  const bHosts = hostsOf(b.host);
  if (!bHosts) return false;
  return bHosts.every((host) =>
    aHosts.some((pattern) => pattern === host || (pattern.startsWith('*.') && host.endsWith(pattern.slice(1)) && !host.startsWith('*.'))),
  );
}

function conditionsCover(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined, caseless: boolean): boolean {
  if (!a) return true;
  const key = (name: string) => (caseless ? name.toLowerCase() : name);
  const bByName = new Map(Object.entries(b ?? {}).map(([name, value]) => [key(name), value]));
  return Object.entries(a).every(([name, value]) => bByName.has(key(name)) && isDeepStrictEqual(bByName.get(key(name)), value));
}

/** True when every request `b` matches is also matched by `a`. */
export function matchCovers(a: MatchConfig, b: MatchConfig): boolean {
  if (a.methods && !b.methods?.every((m) => a.methods!.includes(m))) return false;
  return (
    pathCovers(a, b) &&
    hostCovers(a, b) &&
    conditionsCover(a.headers, b.headers, true) &&
    conditionsCover(a.query, b.query, false) &&
    conditionsCover(a.cookies, b.cookies, false) &&
    // Body conditions narrow like the others: a rule with one covers only rules with the same.
    conditionsCover(a.body, b.body, false)
  );
}

export function unreachableRuleWarnings(routes: readonly RouteConfig[]): RouteWarning[] {
  const warnings: RouteWarning[] = [];
  routes.forEach((route, index) => {
    const earlier = routes.findIndex((other, i) => i < index && matchCovers(other.match, route.match));
    if (earlier !== -1) {
      const name = (i: number) => routes[i]!.name ?? `route-${i}`;
      warnings.push({
        index,
        message: `route "${name(index)}" can never match: "${name(earlier)}" (routes[${earlier}]) comes first and matches every request it would`,
      });
    }
  });
  return warnings;
}
