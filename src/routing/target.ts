// The request target (RFC 9112 §3.2) to the paths the rules match and the backend is sent.
// Origin-form ("/path?query") and absolute-form ("http://host/path?query", from clients that
// treat the gateway as a forward proxy) go through one and the same path policy: the path is
// taken as sent, never resolved by a URL parser first. A target never carries a fragment:
// "#" is refused, since backends that strip it would serve another path than the one matched.

import { normaliseRequestPath, type PathOptions, type PathRejection } from './normalise.js';

/** A parsed request target: the path (for matching) and the query (kept as sent). */
export interface RequestTarget {
  path: string;
  /** "" or "?..." exactly as the client sent it. */
  query: string;
}

export type TargetRefusal =
  | { readonly problem: 'bad-request'; readonly detail: string }
  | { readonly problem: 'ambiguous-path'; readonly detail: string };

export interface ReadTarget {
  /** Normalised path the rules see. */
  readonly match: string;
  /** Normalised path forwarded (before any rewrite), without the query. */
  readonly forward: string;
  /** "" or "?..." exactly as sent. */
  readonly query: string;
}

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** Splits a target into path and query; undefined when it is neither origin- nor absolute-form. */
export function parseTarget(raw: string): RequestTarget | undefined {
  let target = raw;
  if (target.charCodeAt(0) !== 47 /* / */) {
    const authority = ABSOLUTE.exec(target);
    if (!authority) return undefined;
    const scheme = target.slice(0, target.indexOf(':')).toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return undefined;
    target = target.slice(authority[0].length);
    if (target.charCodeAt(0) !== 47) target = `/${target}`;
  }
  const queryAt = target.indexOf('?');
  return queryAt === -1 ? { path: target, query: '' } : { path: target.slice(0, queryAt), query: target.slice(queryAt) };
}

/** The request target read under the path policy, or how to refuse it. */
export function readTarget(raw: string, options: PathOptions): ReadTarget | TargetRefusal {
  if (raw.includes('#'))
    return { problem: 'ambiguous-path', detail: 'the path is refused: a request target never carries a fragment ("#")' };
  const target = parseTarget(raw);
  if (!target) return { problem: 'bad-request', detail: 'the request target must be a path' };
  const forms = normaliseRequestPath(target.path, options);
  if (isPathRejection(forms)) return { problem: 'ambiguous-path', detail: `the path is refused: ${forms.rejected}` };
  return { match: forms.match, forward: forms.forward, query: target.query };
}

function isPathRejection(value: object): value is PathRejection {
  return 'rejected' in value;
}

export function isTargetRefusal(value: ReadTarget | TargetRefusal): value is TargetRefusal {
  return 'problem' in value;
}
