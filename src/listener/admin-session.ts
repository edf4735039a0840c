// Browser sign-in to the admin listener: GET /admin/login (a form), POST /admin/session (the
// token, as a form field or JSON) sets a same-site, HttpOnly session cookie; DELETE signs out.
// The cookie is stateless — an expiry signed with the token (HMAC-SHA256) — so changing the token
// (a reload) signs every browser out, and workers sharing a token accept each other's sessions.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { problemBody } from '../core/problems.js';

export const SESSION_COOKIE = 'spillway_admin';
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Where a browser lands after signing in. */
const AFTER_SIGN_IN = '/console';

/** Equal-time comparison: both sides are hashed first, so neither length nor content leaks. */
export function tokenMatches(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  return match?.[1];
}

function signature(token: string, expires: string): Buffer {
  return createHmac('sha256', token).update(`spillway-admin-session:${expires}`).digest();
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A session cookie value valid until now + SESSION_TTL_MS. */
export function issueSession(token: string, now = Date.now()): { value: string; expiresAt: number } {
  const expiresAt = now + SESSION_TTL_MS;
  const expires = expiresAt.toString(36);
  return { value: `${expires}.${signature(token, expires).toString('base64url')}`, expiresAt };
}

/** Whether the Cookie header carries an unexpired session signed with this token. */
export function sessionValid(cookieHeader: string | undefined, token: string, now = Date.now()): boolean {
  const value = readCookie(cookieHeader, SESSION_COOKIE);
  const dot = value?.indexOf('.') ?? -1;
  if (!value || dot < 1) return false;
  const expires = value.slice(0, dot);
  const expiresAt = Number.parseInt(expires, 36);
  if (!Number.isFinite(expiresAt) || expiresAt <= now) return false;
  // Compared as text: base64url decoding ignores the spare bits of the last character.
  const given = Buffer.from(value.slice(dot + 1));
  const expected = Buffer.from(signature(token, expires).toString('base64url'));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function cookieHeader(value: string, maxAgeSeconds: number): string {
  // No `Secure`: the admin listener speaks plain HTTP (put TLS in front to cross a network).
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

function loginPage(message: string | undefined): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spillway admin: sign in</title>
<style>body{font:16px system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}input,button{font:inherit;padding:.4rem;margin:.3rem 0;width:100%;box-sizing:border-box}p.error{color:#b00020}</style>
</head><body>
<h1>spillway admin</h1>
${message ? `<p class="error">${message}</p>\n` : ''}<form method="post" action="/admin/session">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</body></html>
`;
}

function problem(reply: FastifyReply, code: 'admin-unauthorized' | 'bad-request', detail: string) {
  reply
    .code(code === 'admin-unauthorized' ? 401 : 400)
    .type('application/problem+json')
    .header('cache-control', 'no-store');
  return reply.send(problemBody(code, detail));
}

/** The submitted token: a form field `token`, or `{ "token": "..." }` as JSON. */
function submittedToken(contentType: string | undefined, body: unknown): { token: string | undefined; form: boolean } {
  const text = typeof body === 'string' ? body : '';
  if (contentType && /^application\/([\w.+-]*\+)?json\b/i.test(contentType)) {
    try {
      const parsed = JSON.parse(text) as { token?: unknown };
      return { token: typeof parsed?.token === 'string' ? parsed.token : undefined, form: false };
    } catch {
      return { token: undefined, form: false };
    }
  }
  return { token: new URLSearchParams(text).get('token') ?? undefined, form: true };
}

export function registerSessionRoutes(app: FastifyInstance, getToken: () => string | undefined): void {
  app.get('/admin/login', async (_request, reply) => {
    const message = getToken() === undefined ? 'No admin token is configured: set admin.token or SPILLWAY_ADMIN_TOKEN.' : undefined;
    return reply.headers(PAGE_HEADERS).send(loginPage(message));
  });

  app.post('/admin/session', async (request, reply) => {
    const token = getToken();
    const submitted = submittedToken(request.headers['content-type'], request.body);
    if (token === undefined) return problem(reply, 'admin-unauthorized', 'no admin token is configured: there is nothing to sign in with');
    if (submitted.token === undefined)
      return problem(reply, 'bad-request', 'send the token as a form field "token" or as JSON {"token": "..."}');
    if (!tokenMatches(submitted.token, token)) {
      if (submitted.form) return reply.code(401).headers(PAGE_HEADERS).send(loginPage('That is not the admin token.'));
      return problem(reply, 'admin-unauthorized', 'that is not the admin token');
    }
    const session = issueSession(token);
    reply.header('set-cookie', cookieHeader(session.value, Math.floor(SESSION_TTL_MS / 1000))).header('cache-control', 'no-store');
    if (submitted.form) return reply.code(303).header('location', AFTER_SIGN_IN).send();
    return { signedIn: true, expiresAt: new Date(session.expiresAt).toISOString() };
  });

  app.delete('/admin/session', async (_request, reply) => {
    return reply.code(204).header('set-cookie', cookieHeader('', 0)).header('cache-control', 'no-store').send();
  });
}
