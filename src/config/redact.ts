// The one redaction of the config: every admin view and every log line hides the same values,
// the ones the schema marks as secrets (schema/secret.ts) — header values sent to backends, rate
// limit tier keys, match.headers / match.cookies conditions, JWT secrets, a JWKS file's private
// key members, the admin token — plus the userinfo (`user:password@`) of any URL anywhere.

import type { z } from 'zod';
import { gatewaySchema, type GatewayConfig } from './schema/index.js';
import { type SecretKind, secretFields } from './schema/secret.js';

export const REDACTED = '[redacted]';

/** Called for each string of the config; returns what to show in its place. */
type StringVisitor = (value: string, kind: SecretKind) => string;

/** The parts of a zod definition the walk follows (zod 4 `_zod.def`). */
export interface SchemaDef {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  out?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  valueType?: z.core.$ZodType;
  element?: z.core.$ZodType;
  items?: z.core.$ZodType[];
  options?: z.core.$ZodType[];
  left?: z.core.$ZodType;
  right?: z.core.$ZodType;
  getter?: () => z.core.$ZodType;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every string inside `value`, deep, passed through `visit`. */
function mapStrings(value: unknown, kind: SecretKind, visit: StringVisitor): unknown {
  if (typeof value === 'string') return visit(value, kind);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, kind, visit));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, mapStrings(child, kind, visit)]));
  return value;
}

/**
 * Walks a parsed value alongside its schema: strings under a field marked secret go to `visit`
 * with that field's kind, every other string with kind `url` (only URL credentials hidden).
 */
function walk(schema: z.core.$ZodType, value: unknown, visit: StringVisitor): unknown {
  const mark = secretFields.get(schema);
  if (mark) return mapStrings(value, mark.kind, visit);
  const def = schema._zod.def as unknown as SchemaDef;
  if (WRAPPERS.has(def.type) && def.innerType) return walk(def.innerType, value, visit);
  switch (def.type) {
    case 'pipe':
      // A transform's output has no schema of its own: its input's marks are the best guide.
      return def.out && def.out._zod.def.type !== 'transform' ? walk(def.out, value, visit) : walk(def.in!, value, visit);
    case 'lazy':
      return walk(def.getter!(), value, visit);
    case 'object': {
      if (!isRecord(value)) break;
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value)) {
        const field = def.shape?.[key];
        out[key] = field ? walk(field, child, visit) : mapStrings(child, 'url', visit);
      }
      return out;
    }
    case 'record':
      if (!isRecord(value)) break;
      return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, walk(def.valueType!, child, visit)]));
    case 'array':
      if (!Array.isArray(value)) break;
      return value.map((item) => walk(def.element!, item, visit));
    case 'tuple':
      if (!Array.isArray(value)) break;
      return value.map((item, index) => (def.items?.[index] ? walk(def.items[index], item, visit) : mapStrings(item, 'url', visit)));
    case 'union': {
      // Each option hides what it knows of; options that do not fit the value change nothing.
      let out = value;
      for (const option of def.options ?? []) out = walk(option, out, visit);
      return out;
    }
    case 'intersection':
      return walk(def.right!, walk(def.left!, value, visit), visit);
  }
  return mapStrings(value, 'url', visit);
}

/** The userinfo of a URL, wherever in a string (an error message may quote a URL). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^@/?#\s]*)@/gi;

/** The text with the userinfo (`user:password@`) of every URL in it replaced. */
export function redactUrl(value: string): string {
  if (!value.includes('@')) return value;
  return value.replace(URL_USERINFO, (_whole, scheme: string) => `${scheme}${REDACTED}@`);
}

/** A deep copy of the parsed config with every secret replaced by "[redacted]". */
export function redactConfig(config: GatewayConfig): unknown {
  return walk(gatewaySchema, config, (value, kind) => (kind === 'value' ? REDACTED : redactUrl(value)));
}

/** The same redaction for one part of the config, given the schema it was parsed with. */
export function redactWith(schema: z.core.$ZodType, value: unknown): unknown {
  return walk(schema, value, (text, kind) => (kind === 'value' ? REDACTED : redactUrl(text)));
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Shorter values are not hunted for in log lines: they would blank out ordinary words. */
const MIN_SECRET_LENGTH = 4;

/** Every secret value of the config, for scrubbing finished log lines. */
export function configSecrets(config: GatewayConfig): string[] {
  const found = new Set<string>();
  walk(gatewaySchema, config, (value, kind) => {
    if (kind === 'value') found.add(value);
    if (!value.includes('@')) return value;
    for (const [, , userinfo] of value.matchAll(URL_USERINFO)) {
      if (!userinfo) continue;
      const colon = userinfo.indexOf(':');
      if (colon === -1) found.add(decodeSafe(userinfo));
      else found.add(decodeSafe(userinfo.slice(colon + 1))).add(userinfo.slice(colon + 1));
      found.add(userinfo);
    }
    return value;
  });
  return [...found].filter((secret) => secret.length >= MIN_SECRET_LENGTH);
}
