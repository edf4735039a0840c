// API keys of a route's `auth`: only SHA-256 digests of the configured keys are kept. A presented
// key is hashed and looked up by its digest, then the digests are compared with timingSafeEqual,
// so neither the lookup nor the comparison takes longer for a key that shares a prefix with a
// real one.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ApiKeysConfig } from '../config/schema/auth.js';
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

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export function compileApiKeys(config: ApiKeysConfig): ApiKeyCheck {
  const byDigest = new Map<string, { digest: Buffer; id: string }>();
  for (const entry of [...(config.keys ?? []), ...(config.file ?? [])]) {
    const hashed = digest(entry.key);
    byDigest.set(hashed.toString('base64'), { digest: hashed, id: entry.id });
  }
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
      const found = byDigest.get(presented.toString('base64'));
      if (!found || !timingSafeEqual(found.digest, presented)) return { kind: 'invalid' };
      return { kind: 'ok', identity: found.id };
    },
  };
}
