// Path normalisation before matching, the way a backend will read the path: unreserved
// characters percent-decoded, duplicate slashes collapsed, "." and ".." segments resolved.
// Anything that could be read two ways — an encoded slash or backslash, an encoded dot-segment,
// a ".." above the root, broken percent-encoding, NUL, a segment ending in "." or whitespace,
// a dot-segment hidden behind ";" parameters — is refused (400), so no spelling of a path can
// reach a route the rules meant to send elsewhere (docs/routing.md, "Paths").
//
// Two forms come out: `forward`, the path sent to the backend (";" parameters kept as sent), and
// `match`, the path the rules see (with `semicolons: match-stripped`, each segment's ";…" removed,
// which is how Tomcat, Jetty and Spring read it). Both have the same segments, so a rule that
// matches one matches the other's prefix.

export interface PathRejection {
  readonly rejected: string;
}

export interface PathOptions {
  /** match-stripped: match without ";…", forward as sent; refuse: 400; keep: ";" is an ordinary character. */
  readonly semicolons: 'match-stripped' | 'refuse' | 'keep';
  /** Match rules case-insensitively (for backends that serve /ADMIN as /admin). */
  readonly caseInsensitive: boolean;
  /** refuse: a segment ending in "." or whitespace is refused (IIS and Windows drop them). */
  readonly trailingDotSpace: 'refuse' | 'keep';
}

export const DEFAULT_PATH_OPTIONS: PathOptions = { semicolons: 'match-stripped', caseInsensitive: false, trailingDotSpace: 'refuse' };

export interface PathForms {
  /** What the rules match (";" parameters stripped in match-stripped mode). */
  readonly match: string;
  /** What the backend is sent. */
  readonly forward: string;
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

/** Space and the ASCII control whitespace a backend may trim: HT, LF, VT, FF, CR, SP. */
function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/** True when the path may need work (cheap scan; most paths need none). */
function needsNormalising(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */ || c === 0x5c /* \ */ || c === 0x3b /* ; */) return true;
    if (c === 0x2f /* / */) {
      const next = path.charCodeAt(i + 1);
      if (next === 0x2f || next === 0x2e) return true;
    } else if (c === 0x2e /* . */) {
      const next = path.charCodeAt(i + 1);
      if (next === 0x2f || Number.isNaN(next)) return true;
    }
  }
  return false;
}

interface Decoded {
  readonly text: string;
  /** Code of the last character once decoded (-1 for an empty segment). */
  readonly last: number;
  readonly encodedDot: boolean;
}

/** Decodes one segment; returns the text, or a rejection. */
function decodeSegment(segment: string): Decoded | PathRejection {
  const lastRaw = segment.length === 0 ? -1 : segment.charCodeAt(segment.length - 1);
  if (!segment.includes('%')) return { text: segment, last: lastRaw, encodedDot: false };
  let out = '';
  let encodedDot = false;
  let last = -1;
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch !== '%') {
      out += ch;
      last = ch.charCodeAt(0);
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
    last = code;
    i += 2;
  }
  return { text: out, last, encodedDot };
}

function isRejected(value: Decoded | PathRejection): value is PathRejection {
  return 'rejected' in value;
}

/** The segment as the rules see it and as it is forwarded, or why it is refused. */
function readSegment(raw: string, options: PathOptions): { match: string; forward: string } | PathRejection {
  const semicolon = options.semicolons === 'keep' ? -1 : raw.indexOf(';');
  if (semicolon !== -1 && options.semicolons === 'refuse') return { rejected: '";" in path (path parameters are refused)' };
  const whole = decodeSegment(raw);
  if (isRejected(whole)) return whole;
  const stripped = semicolon === -1 ? whole : decodeSegment(raw.slice(0, semicolon));
  if (isRejected(stripped)) return stripped;
  for (const part of semicolon === -1 ? [whole] : [whole, stripped]) {
    if (part.encodedDot && (part.text === '.' || part.text === '..')) return { rejected: 'encoded dot-segment' };
  }
  if (semicolon !== -1) {
    // "..;x" is ".." to Tomcat and a name elsewhere; ";x" alone is an empty segment to one and a
    // name to the other: either way the segment count differs, so the request is refused.
    if (stripped.text === '.' || stripped.text === '..') return { rejected: 'a dot-segment with ";" parameters' };
    if (stripped.text === '') return { rejected: 'a segment of only ";" parameters' };
  }
  if (options.trailingDotSpace === 'refuse') {
    for (const part of semicolon === -1 ? [whole] : [whole, stripped]) {
      if (part.text === '.' || part.text === '..') continue;
      if (part.last === 0x2e || isSpace(part.last)) return { rejected: 'a segment ends in "." or whitespace' };
    }
  }
  return { match: stripped.text, forward: whole.text };
}

/**
 * The forms of `path` (which starts with "/", no query or fragment), or why it is refused.
 * Returns the very same string in both forms when nothing needed changing.
 */
export function normaliseRequestPath(path: string, options: PathOptions = DEFAULT_PATH_OPTIONS): PathForms | PathRejection {
  if (!needsNormalising(path)) return { match: path, forward: path };
  if (path.includes('\\')) return { rejected: 'backslash in path' };
  const raw = path.split('/');
  const match: string[] = [];
  const forward: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < raw.length; i++) {
    const segment = readSegment(raw[i]!, options);
    if ('rejected' in segment) return segment;
    const last = i === raw.length - 1;
    const text = segment.forward;
    if (text === '' || text === '.') {
      if (last) trailingSlash = true;
      continue;
    }
    if (text === '..') {
      if (forward.length === 0) return { rejected: '".." climbs above the root' };
      forward.pop();
      match.pop();
      if (last) trailingSlash = true;
      continue;
    }
    forward.push(text);
    match.push(segment.match);
  }
  if (forward.length === 0) return { match: '/', forward: '/' };
  const tail = trailingSlash ? '/' : '';
  return { match: `/${match.join('/')}${tail}`, forward: `/${forward.join('/')}${tail}` };
}

/** The forwarded form of `path`, or why it is refused (see normaliseRequestPath). */
export function normalisePath(path: string, options: PathOptions = DEFAULT_PATH_OPTIONS): string | PathRejection {
  const forms = normaliseRequestPath(path, options);
  return 'rejected' in forms ? forms : forms.forward;
}

export function isRejection<T>(value: T | PathRejection): value is PathRejection {
  return typeof value === 'object' && value !== null && 'rejected' in value;
}
