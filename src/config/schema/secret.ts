// Which config fields are secrets. The schema marks them (one registry, read by the single
// redaction in config/redact.ts that every admin view and every log line goes through), so a
// new secret field is hidden everywhere by marking it where it is declared.

import { z } from 'zod';

/**
 * - `value`: every string inside the field is a secret (a header value, a key list, a token);
 * - `url`: only the URL's userinfo (`user:password@`) is a secret; the rest is shown.
 */
export type SecretKind = 'value' | 'url';

export const secretFields = z.registry<{ kind: SecretKind }>();

/** A copy of `schema` marked as a secret (a copy, so other users of a shared schema stay unmarked). */
export function secret<T extends z.ZodType>(schema: T, kind: SecretKind = 'value'): T {
  const marked = schema.clone() as T;
  secretFields.add(marked, { kind });
  return marked;
}
