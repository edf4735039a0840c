// API keys of a route's `auth`: only SHA-256 digests of the configured keys are kept. A presented
// key is hashed and looked up by its digest, then the digests are compared with timingSafeEqual,
// so neither the lookup nor the comparison takes longer for a key that shares a prefix with a
// real one. Keys of a Redis set (`redisSet`) come from a live index that the state layer
// refreshes in the background: a check never waits on Redis.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ApiKeyEntry, ApiKeysConfig } from '../config/schema/auth.js';
import { REPEATED, singleHeader } from '../core/single-header.js';

export type ApiKeyResult =
  | { readonly kind: 'ok'; readonly identity: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'repeated'; readonly header: string };

export interface ApiKeyCheck {
  readonly header: string;
  readonly size: number;
  check(req: IncomingMessage): ApiKeyResult;
}

/** Keys by the base64 of their SHA-256 digest: the digest and the identity the key proves. */
export type ApiKeyIndex = ReadonlyMap<string, { readonly digest: Buffer; readonly id: string }>;

/** A set of keys kept up to date elsewhere; `current` is undefined until it was read once. */
export interface LiveApiKeys {
  readonly current: ApiKeyIndex | undefined;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Adds the digests of `entries` to `index` (a later entry with the same key wins). */
export function indexApiKeys(
  entries: Iterable<ApiKeyEntry>,
  index = new Map<string, { digest: Buffer; id: string }>(),
): Map<string, { digest: Buffer; id: string }> {
  for (const entry of entries) {
    const hashed = digest(entry.key);
    index.set(hashed.toString('base64'), { digest: hashed, id: entry.id });
  }
  return index;
}

/** `live`: the keys of the route's `redisSet` (none accepted from it while it was never read). */
export function compileApiKeys(config: ApiKeysConfig, live?: LiveApiKeys): ApiKeyCheck {
  const byDigest: ApiKeyIndex = indexApiKeys([...(config.keys ?? []), ...(config.file ?? [])]);
  const header = config.header;
  return {
    header,
    size: byDigest.size,
    check(req) {
      const value = singleHeader(req, header);
      if (value === REPEATED) return { kind: 'repeated', header };
      const key = value?.trim();
      if (!key) return { kind: 'missing' };
      const presented = digest(key);
      const lookup = presented.toString('base64');
      const found = byDigest.get(lookup) ?? live?.current?.get(lookup);
      if (!found || !timingSafeEqual(found.digest, presented)) return { kind: 'invalid' };
      return { kind: 'ok', identity: found.id };
    },
  };
}
