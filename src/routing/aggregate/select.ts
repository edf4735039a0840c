// `select: data.items` — a dotted path into a JSON value; numeric steps index arrays.

export type Selected = { found: true; value: unknown } | { found: false };

export function selectField(value: unknown, path: readonly string[]): Selected {
  let current = value;
  for (const step of path) {
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(step)) return { found: false };
      const index = Number(step);
      if (index >= current.length) return { found: false };
      current = current[index];
    } else if (current !== null && typeof current === 'object' && Object.hasOwn(current, step)) {
      current = (current as Record<string, unknown>)[step];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: current };
}
