// Per-backend request header edits (credentials, provider-specific headers). Compiled once per
// snapshot; a backend without edits costs nothing per request.

export interface HeaderEdit {
  /** Lower-case names removed from the request. */
  readonly remove: readonly string[];
  /** Lower-case names set (after removal); values may be secrets and are never logged. */
  readonly set: ReadonlyArray<readonly [string, string]>;
}

export function compileHeaderEdit(
  upstreamSet: Record<string, string> | undefined,
  upstreamRemove: readonly string[] | undefined,
  backendSet: Record<string, string> | undefined,
  backendRemove: readonly string[] | undefined,
): HeaderEdit | undefined {
  const set = new Map<string, string>();
  for (const [name, value] of Object.entries(upstreamSet ?? {})) set.set(name.toLowerCase(), value);
  for (const [name, value] of Object.entries(backendSet ?? {})) set.set(name.toLowerCase(), value);
  const remove = [...new Set([...(upstreamRemove ?? []), ...(backendRemove ?? [])].map((name) => name.toLowerCase()))].filter(
    (name) => !set.has(name),
  );
  if (set.size === 0 && remove.length === 0) return undefined;
  return { remove, set: [...set] };
}

/** A copy of `headers` with the edit applied (the shared request headers stay untouched for the next attempt). */
export function applyHeaderEdit(headers: Record<string, string | string[]>, edit: HeaderEdit): Record<string, string | string[]> {
  const out = { ...headers };
  for (const name of edit.remove) delete out[name];
  for (const [name, value] of edit.set) out[name] = value;
  return out;
}

/** Removes the named headers in place (a route's removeHeaders, before any backend is tried). */
export function removeHeaders(headers: Record<string, string | string[]>, names: readonly string[]): void {
  for (const name of names) delete headers[name];
}
