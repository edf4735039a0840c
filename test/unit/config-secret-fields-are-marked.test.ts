// The redaction hides what the config schema marks as secret. This keeps the marks complete: a
// field whose name says "secret" (a key list, a token, a password, header values) must be marked,
// so a new secret field cannot slip into /admin/config or a log line unmarked.

import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { gatewaySchema } from '../../src/config/schema/index.js';
import { secretFields } from '../../src/config/schema/secret.js';
import type { SchemaDef } from '../../src/config/redact.js';

/** Every field path of the schema ("a.b.*.c", "[]" for list items) → whether it (or a parent) is marked secret. */
function fieldPaths(schema: z.core.$ZodType, path: string, marked: boolean, out: Map<string, boolean>, seen: Set<unknown>): void {
  const isMarked = marked || secretFields.get(schema) !== undefined;
  if (path) out.set(path, (out.get(path) ?? false) || isMarked);
  if (seen.has(schema)) return;
  seen.add(schema);
  const def = schema._zod.def as unknown as SchemaDef;
  const next = (child: z.core.$ZodType | undefined, suffix: string) => child && fieldPaths(child, suffix, isMarked, out, new Set(seen));
  if (def.innerType) next(def.innerType, path);
  if (def.type === 'pipe') {
    next(def.in, path);
    next(def.out, path);
  }
  for (const [key, child] of Object.entries(def.shape ?? {})) next(child, path ? `${path}.${key}` : key);
  if (def.type === 'record') next(def.valueType, `${path}.*`);
  if (def.type === 'array') next(def.element, `${path}[]`);
  for (const option of def.options ?? []) next(option, path);
}

describe('config secret marks', () => {
  const paths = new Map<string, boolean>();
  fieldPaths(gatewaySchema, '', false, paths, new Set());

  it('mark every field the redaction must hide', () => {
    for (const path of [
      'admin.token',
      'upstreams.*.headers.*',
      'upstreams.*.backends[].headers.*',
      'upstreams.*.backends[].url',
      'routes[].match.headers.*',
      'routes[].match.cookies.*',
      'routes[].rewrite.requestHeaders.set.*',
      'rateLimits.*.tiers.*.keys',
      'routes[].auth.apiKeys.keys',
      'routes[].auth.apiKeys.file',
      'rateLimits.*.jwt.secret',
      'rateLimits.*.jwt.jwks.keys[].d',
      'rateLimits.*.jwt.jwks.keys[].qi',
      'routes[].idempotency.jwt.secret',
      'redis.url',
      'redis.cluster[]',
    ]) {
      expect(paths.has(path), `${path} is not a field of the schema`).toBe(true);
      expect(paths.get(path), `${path} is not marked secret`).toBe(true);
    }
  });

  it('leave no secret-sounding field unmarked', () => {
    const SOUNDS_SECRET = /(secret|token|passw|credential|apikey|api-key|private)[^.]*$|\.keys(\[\])?$/i;
    // Not secrets despite the name: a boolean switch, a JWKS's key list (its public members
    // n, e, kid are not secret; the private ones are marked one by one), and the `auth.apiKeys`
    // block (its header name is not secret; its `keys` are marked).
    const NOT_SECRET = new Set([
      'admin.metricsToken',
      'rateLimits.*.jwt.jwks.keys',
      'rateLimits.*.jwt.jwks.keys[]',
      'routes[].auth.jwt.jwks.keys',
      'routes[].auth.jwt.jwks.keys[]',
      'routes[].idempotency.jwt.jwks.keys',
      'routes[].idempotency.jwt.jwks.keys[]',
      'routes[].auth.apiKeys',
    ]);
    const unmarked = [...paths]
      .filter(([path, marked]) => !marked && SOUNDS_SECRET.test(path) && !NOT_SECRET.has(path))
      .map(([path]) => path);
    expect(unmarked).toEqual([]);
  });
});
