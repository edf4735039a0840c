// Client authentication per route (`auth`): API keys (a list in the config or a file, re-read
// on every reload, and/or a Redis set read every `refresh`) and/or bearer JWTs, verified like the rate-limit `jwt` keys. The identity a
// request proves is the default rate-limit key (`key: auth`).

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { jwtFields, oneJwtKeySource } from './ratelimit.js';
import { secret } from './secret.js';
import { duration } from './units.js';

/** One configured API key: the secret and the identity it proves. */
export interface ApiKeyEntry {
  readonly key: string;
  /** The identity (rate-limit key, logs); when not named, a digest of the key — never the key. */
  readonly id: string;
}

/** The identity of an unnamed key: stable across reloads and replicas, and not the secret itself. */
export function unnamedKeyId(key: string): string {
  return `key-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

const keyEntry = z
  .union([
    z.string().min(1),
    z.strictObject({
      key: z.string().min(1).meta({ description: 'The API key (use ${ENV}).' }),
      id: z
        .string()
        .min(1)
        .meta({ description: 'The identity this key proves (rate-limit key, logs); default: "key-" and 12 hex digits of its SHA-256.' }),
    }),
  ])
  .transform((value): ApiKeyEntry => (typeof value === 'string' ? { key: value, id: unnamedKeyId(value) } : value));

/** One line of a key file or one member of a key set: "<key>" or "<id> <key>"; blank or "#": none. */
export function parseKeyLine(line: string): ApiKeyEntry | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const parts = trimmed.split(/\s+/);
  if (parts.length === 1) return { key: parts[0]!, id: unnamedKeyId(parts[0]!) };
  return { id: parts[0]!, key: parts.slice(1).join(' ') };
}

/** A key file: one key per line, "<key>" or "<id> <key>"; blank lines and "#" comments skipped. */
export function parseKeyFile(text: string): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  for (const line of text.split(/\r?\n/)) {
    const entry = parseKeyLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}

const keyFile = z
  .string()
  .min(1)
  .transform((file, ctx) => {
    try {
      return parseKeyFile(readFileSync(file, 'utf8'));
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `cannot read API key file ${JSON.stringify(file)}: ${(error as Error).message}` });
      return z.NEVER;
    }
  })
  .meta({
    description:
      'A file of API keys, one per line: "<key>" or "<id> <key>" ("#" comments); read when the config loads and on every reload.',
  });

export const apiKeysSchema = z
  .strictObject({
    header: z.string().toLowerCase().default('x-api-key').meta({ description: 'Header carrying the key (sent once).' }),
    keys: secret(z.array(keyEntry)).optional().meta({ description: 'Keys: strings, or { key, id } to name the identity.' }),
    file: secret(keyFile).optional(),
    redisSet: z.string().min(1).max(1024).optional().meta({
      description:
        'A Redis set of API keys (members "<key>" or "<id> <key>"), read with SMEMBERS every `refresh` over the top-level `redis` connection; the name is used as is (no keyPrefix).',
    }),
    refresh: duration
      .default(10_000)
      .refine((ms) => ms >= 100 && ms <= 3_600_000, { message: 'apiKeys.refresh must be between 100ms and 1h' })
      .meta({ description: 'How often the redisSet is read again: a key added or removed takes effect within this time.' }),
  })
  .refine((value) => value.keys !== undefined || value.file !== undefined || value.redisSet !== undefined, {
    message: 'give apiKeys.keys, apiKeys.file, apiKeys.redisSet or several of them',
  });

export const authJwtSchema = z
  .strictObject({
    ...jwtFields,
    identity: z.string().min(1).default('sub').meta({ description: 'The claim that names the client (dotted path allowed).' }),
  })
  .refine(oneJwtKeySource, { message: 'set exactly one of auth.jwt.secret (HS256) and auth.jwt.jwks' });

export const authSchema = z
  .strictObject({
    apiKeys: apiKeysSchema.optional(),
    jwt: authJwtSchema.optional(),
  })
  .refine((auth) => auth.apiKeys !== undefined || auth.jwt !== undefined, { message: 'auth needs apiKeys, jwt or both' })
  .meta({ description: 'Who may use this route: a request without a valid API key or token is answered 401.' });

export type AuthConfig = z.output<typeof authSchema>;
export type ApiKeysConfig = z.output<typeof apiKeysSchema>;
export type AuthJwtConfig = z.output<typeof authJwtSchema>;
