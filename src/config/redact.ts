// The config as shown by GET /admin/config: secrets replaced. Header values sent to backends
// (API keys), fields whose name says secret, and passwords inside URLs never leave the process.

export const REDACTED = '[redacted]';

const SECRET_NAME = /authorization|api[-_]?key|token|secret|passw|credential|cookie|session|signature|private/i;
/** Maps of header name → value that are sent somewhere (not match conditions). */
const HEADER_MAPS = new Set(['headers', 'set']);

function redactUrl(value: string): string {
  if (!value.includes('@') || !value.includes('://')) return value;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_whole, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon === -1 ? REDACTED : `${userinfo.slice(0, colon)}:${REDACTED}`}@`;
  });
}

function redactAll(value: unknown): unknown {
  if (typeof value === 'string') return REDACTED;
  if (Array.isArray(value)) return value.map(redactAll);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactAll(v)]));
  return value;
}

/**
 * A deep copy with secrets redacted. `path` is the chain of keys above `value`: header maps are
 * redacted whole except under `match` (conditions), and respond bodies are kept.
 */
export function redactConfig(value: unknown, path: readonly string[] = []): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) return value.map((item) => redactConfig(item, path));
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  const inMatch = path.includes('match');
  for (const [key, child] of Object.entries(value)) {
    if (key === 'body' && path.at(-1) === 'respond') out[key] = child;
    else if (HEADER_MAPS.has(key) && !inMatch && child && typeof child === 'object' && !Array.isArray(child)) out[key] = redactAll(child);
    else if (SECRET_NAME.test(key) && !inMatch && (typeof child === 'string' || (child && typeof child === 'object')))
      out[key] = redactAll(child);
    else out[key] = redactConfig(child, [...path, key]);
  }
  return out;
}
