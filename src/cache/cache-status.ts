// The Cache-Status response header (RFC 9211): what the cache did with this request.

export type Forward = 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale';

export interface CacheStatusParts {
  hit?: boolean;
  fwd?: Forward;
  fwdStatus?: number;
  /** Seconds of freshness left (negative: stale by that much). */
  ttl?: number;
  stored?: boolean;
  collapsed?: boolean;
  detail?: string;
}

export const CACHE_NAME = 'spillway';

export function formatCacheStatus(parts: CacheStatusParts): string {
  let text = CACHE_NAME;
  if (parts.hit) text += '; hit';
  if (parts.fwd !== undefined) text += `; fwd=${parts.fwd}`;
  if (parts.fwdStatus !== undefined) text += `; fwd-status=${parts.fwdStatus}`;
  if (parts.ttl !== undefined) text += `; ttl=${Math.floor(parts.ttl)}`;
  if (parts.stored) text += '; stored';
  if (parts.collapsed) text += '; collapsed';
  if (parts.detail !== undefined)
    text += `; detail=${/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(parts.detail) ? parts.detail : JSON.stringify(parts.detail)}`;
  return text;
}
