// What matchers look at: the request with its normalised path. Query and cookies are parsed
// only when a rule asks for them.

import type { IncomingHttpHeaders } from 'node:http';

export class RequestView {
  #query: URLSearchParams | undefined;
  #cookies: Map<string, string> | undefined;
  #host: string | undefined;
  #remote: string | undefined | (() => string | undefined);
  #body: Record<string, unknown> | undefined;
  /** True once the body was read for body conditions (its JSON object, or none). */
  bodyRead = false;
  /** Set by a rule with body conditions reached while the body was unread. */
  bodyWanted = false;

  constructor(
    readonly method: string,
    /** Normalised path, no query. */
    readonly path: string,
    /** "" or "?..." as sent. */
    readonly rawQuery: string,
    readonly headers: IncomingHttpHeaders,
    /** The client address, or how to find it (resolved once, only when a rule asks: stickyBy ip). */
    remoteAddress: string | undefined | (() => string | undefined),
  ) {
    this.#remote = remoteAddress;
  }

  get remoteAddress(): string | undefined {
    if (typeof this.#remote === 'function') this.#remote = this.#remote();
    return this.#remote;
  }

  header(name: string): string | undefined {
    const value = this.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  /** Host header, lower-cased, without the port. "" when absent. */
  get host(): string {
    if (this.#host === undefined) this.#host = hostName(this.headers.host ?? this.header(':authority') ?? '');
    return this.#host;
  }

  queryParam(name: string): string | undefined {
    this.#query ??= new URLSearchParams(this.rawQuery);
    return this.#query.get(name) ?? undefined;
  }

  /** The body as read for body conditions: a JSON object, or undefined (none, not JSON, too large). */
  setBody(json: Record<string, unknown> | undefined): void {
    this.#body = json;
    this.bodyRead = true;
  }

  /** A body field by dotted path, as text (strings as they are, numbers and booleans as JSON); undefined when absent or not a scalar. */
  bodyField(path: readonly string[]): string | undefined {
    let value: unknown = this.#body;
    for (const name of path) {
      if (value === null || typeof value !== 'object') return undefined;
      value = Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
    }
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return undefined;
  }

  cookie(name: string): string | undefined {
    this.#cookies ??= parseCookies(this.header('cookie'));
    return this.#cookies.get(name);
  }
}

export function hostName(host: string): string {
  const lower = host.trim().toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end === -1 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  return colon === -1 ? lower : lower.slice(0, colon);
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (name && !cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}
