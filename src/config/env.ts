// `${NAME}` and `${NAME:-default}` interpolation, so secrets and addresses come from the
// environment. References are swapped for YAML-safe placeholders of the same length before
// parsing (so `{ url: ${URL} }` works inside flow maps and columns stay right), then resolved
// inside each string scalar after parsing (so a value is never parsed as YAML syntax).
// `$${...}` escapes a literal "${".

const REFERENCE = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}\n]*))?\}/g;
const PLACEHOLDER = /§(\d+)§_*/g;

export interface Reference {
  name: string;
  fallback: string | undefined;
}

export interface ProtectedText {
  text: string;
  references: Reference[];
}

export function protectReferences(source: string): ProtectedText {
  if (!source.includes('${')) return { text: source, references: [] };
  const references: Reference[] = [];
  const text = source.replace(REFERENCE, (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
    if (escaped) return whole;
    const token = `§${references.length}§`;
    references.push({ name, fallback });
    return token.length < whole.length ? token.padEnd(whole.length, '_') : token;
  });
  return { text, references };
}

export interface ResolvedScalar {
  value: string;
  missing: string[];
  /** The scalar was exactly one reference (so an unquoted one may take a number/boolean type). */
  whole: boolean;
}

export function resolveReferences(scalar: string, references: Reference[], env: NodeJS.ProcessEnv): ResolvedScalar {
  const missing: string[] = [];
  let count = 0;
  const value = scalar.includes('§')
    ? scalar.replace(PLACEHOLDER, (whole, index: string) => {
        const reference = references[Number(index)];
        if (!reference) return whole;
        count++;
        const found = env[reference.name];
        if (found !== undefined && found !== '') return found;
        if (reference.fallback !== undefined) return reference.fallback;
        missing.push(reference.name);
        return '';
      })
    : scalar;
  const whole = count === 1 && /^§\d+§_*$/.test(scalar);
  return { value: value.replaceAll('$${', '${'), missing, whole };
}

/** Interpolates one string directly (for values that do not come from YAML). */
export function interpolateEnv(text: string, env: NodeJS.ProcessEnv): { value: string; missing: string[] } {
  const { text: protectedText, references } = protectReferences(text);
  const { value, missing } = resolveReferences(protectedText, references, env);
  return { value, missing };
}
