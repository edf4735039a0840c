// `key: jwt:<claim>` — the claim of a bearer token whose signature verifies (HS256 with a shared
// secret, or any asymmetric algorithm of a JWKS file or URL, via jose). A forged, expired or
// otherwise unverifiable token yields no key: it never selects a bucket.

import type { IncomingMessage } from 'node:http';
import type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions, JSONWebKeySet } from 'jose';
import type { JwtConfig } from '../config/schema/ratelimit.js';

// jose is imported when the first jwt key is compiled, not at start (it costs ~15 MB of RSS).
let jose: Promise<typeof import('jose')> | undefined;
const loadJose = (): Promise<typeof import('jose')> => (jose ??= import('jose'));

export type JwtVerifier = (req: IncomingMessage) => Promise<JWTPayload | undefined>;

/** Used by rate-limit `jwt:` keys and by route `auth.jwt` (the same verification for both). */
export function jwtVerifier(config: JwtConfig): JwtVerifier {
  const options: JWTVerifyOptions = {
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
    clockTolerance: Math.round(config.clockTolerance / 1000),
    // jose checks exp only when present: a token without one would never expire.
    ...(config.requireExp ? { requiredClaims: ['exp'] } : {}),
  };
  const verifying = loadJose().then(({ createLocalJWKSet, createRemoteJWKSet, jwtVerify }): ((token: string) => Promise<JWTPayload>) => {
    if (config.secret !== undefined) {
      const secret = new TextEncoder().encode(config.secret);
      const hs = { ...options, algorithms: ['HS256'] };
      return async (token) => (await jwtVerify(token, secret, hs)).payload;
    }
    const jwks = config.jwks!;
    const keys: JWTVerifyGetKey =
      'url' in jwks
        ? createRemoteJWKSet(new URL(jwks.url!), { timeoutDuration: 2_000, cooldownDuration: 30_000, cacheMaxAge: 600_000 })
        : createLocalJWKSet({ keys: jwks.keys } as unknown as JSONWebKeySet);
    return async (token) => (await jwtVerify(token, keys, options)).payload;
  });
  const header = config.header;
  return async (req) => {
    const raw = req.headers[header];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (!value) return undefined;
    const token = /^bearer\s+/i.test(value) ? value.replace(/^bearer\s+/i, '').trim() : value.trim();
    if (!token) return undefined;
    try {
      return await (await verifying)(token);
    } catch {
      return undefined;
    }
  };
}

/** A claim by name or dotted path ("sub", "org.id"); strings and numbers only. */
export function claimValue(payload: JWTPayload, path: string): string | undefined {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}
