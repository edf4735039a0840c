// Path normalisation before matching, the way a backend will read the path: unreserved
// characters percent-decoded, duplicate slashes collapsed, "." and ".." segments resolved.
// Anything that could be read two ways — an encoded slash or backslash, an encoded dot-segment,
// a ".." above the root, broken percent-encoding, NUL — is refused (400), so no spelling of a
// path can reach a route the rules meant to send elsewhere.

export interface PathRejection {
  readonly rejected: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

/** True when the path may need work (cheap scan; most paths need none). */
function needsNormalising(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */ || c === 0x5c /* \ */) return true;
    if (c === 0x2f /* / */) {
      const next = path.charCodeAt(i + 1);
      if (next === 0x2f || next === 0x2e) return true;
    }
  }
  return false;
}

/** Decodes one segment; returns the text, or a rejection. */
function decodeSegment(segment: string): string | PathRejection {
  if (!segment.includes('%')) return segment;
  let out = '';
  let encodedDot = false;
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return { rejected: 'broken percent-encoding' };
    const code = parseInt(hex, 16);
    if (code === 0x2f) return { rejected: 'encoded slash (%2F)' };
    if (code === 0x5c) return { rejected: 'encoded backslash (%5C)' };
    if (code === 0x00) return { rejected: 'encoded NUL (%00)' };
    if (code === 0x2e) encodedDot = true;
    out += isUnreserved(code) ? String.fromCharCode(code) : `%${hex.toUpperCase()}`;
    i += 2;
  }
  if (encodedDot && (out === '.' || out === '..')) return { rejected: 'encoded dot-segment' };
  return out;
}

/**
 * The normalised form of `path` (which starts with "/", no query), or why it is refused.
 * Returns the very same string when nothing needed changing.
 */
export function normalisePath(path: string): string | PathRejection {
  if (!needsNormalising(path)) return path;
  if (path.includes('\\')) return { rejected: 'backslash in path' };
  const raw = path.split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < raw.length; i++) {
    const decoded = decodeSegment(raw[i]!);
    if (typeof decoded !== 'string') return decoded;
    const last = i === raw.length - 1;
    if (decoded === '') {
      if (last) trailingSlash = true;
      continue;
    }
    if (decoded === '.') {
      if (last) trailingSlash = true;
      continue;
    }
    if (decoded === '..') {
      if (out.length === 0) return { rejected: '".." climbs above the root' };
      out.pop();
      if (last) trailingSlash = true;
      continue;
    }
    out.push(decoded);
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`;
}

export function isRejection(value: string | PathRejection): value is PathRejection {
  return typeof value !== 'string';
}
