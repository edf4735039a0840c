// Part path templates: "/users/{userId}", "/orders?user={userId}&limit=5",
// "/orders?customer={profile.customerId}". Literal text is sent as written; every value is
// URL-encoded as one component, so "a/b & c" can never add a segment or a query parameter.

import { selectField } from './select.js';

export type TemplatePiece =
  | { readonly kind: 'text'; readonly text: string }
  /** A route :param, else the first query parameter of that name. */
  | { readonly kind: 'input'; readonly name: string }
  /** A field of an earlier part's JSON answer. */
  | { readonly kind: 'part'; readonly part: string; readonly field: readonly string[]; readonly name: string };

export interface PathTemplate {
  readonly source: string;
  readonly pieces: readonly TemplatePiece[];
  readonly usesQuery: boolean;
}

export interface TemplateInput {
  readonly params: Readonly<Record<string, string>>;
  /** Parsed lazily: only templates that need it pay for it. */
  query(): URLSearchParams;
  /** JSON answers of the parts that have completed. */
  readonly answers: ReadonlyMap<string, unknown>;
}

export type RenderResult = { ok: true; path: string } | { ok: false; missing: string; fromRequest: boolean };

/** Compiles a template already validated by the config schema. */
export function compileTemplate(source: string, routeParams: readonly string[], partNames: ReadonlySet<string>): PathTemplate {
  const pieces: TemplatePiece[] = [];
  let usesQuery = false;
  let at = 0;
  while (at < source.length) {
    const open = source.indexOf('{', at);
    if (open === -1) {
      pieces.push({ kind: 'text', text: source.slice(at) });
      break;
    }
    if (open > at) pieces.push({ kind: 'text', text: source.slice(at, open) });
    const close = source.indexOf('}', open);
    const name = source.slice(open + 1, close);
    const dot = name.indexOf('.');
    if (dot !== -1 && partNames.has(name.slice(0, dot))) {
      pieces.push({ kind: 'part', part: name.slice(0, dot), field: name.slice(dot + 1).split('.'), name });
    } else {
      pieces.push({ kind: 'input', name });
      if (!routeParams.includes(name)) usesQuery = true;
    }
    at = close + 1;
  }
  return { source, pieces, usesQuery };
}

export function renderTemplate(template: PathTemplate, input: TemplateInput): RenderResult {
  let out = '';
  for (const piece of template.pieces) {
    if (piece.kind === 'text') {
      out += piece.text;
      continue;
    }
    let value: string | undefined;
    if (piece.kind === 'input') {
      const param = input.params[piece.name];
      value = param !== undefined ? decodeParam(param) : (input.query().get(piece.name) ?? undefined);
      if (value === undefined) return { ok: false, missing: piece.name, fromRequest: true };
    } else {
      const found = selectField(input.answers.get(piece.part), piece.field);
      if (found.found && (typeof found.value === 'string' || typeof found.value === 'number' || typeof found.value === 'boolean'))
        value = String(found.value);
      if (value === undefined) return { ok: false, missing: piece.name, fromRequest: false };
    }
    out += encodeURIComponent(value);
  }
  return { ok: true, path: out };
}

/** Route params keep the percent-encoding of reserved characters; encode each value once. */
function decodeParam(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
