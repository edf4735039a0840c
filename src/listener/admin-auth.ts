// Who may use the admin listener. /healthz and /readyz are always open (probes); /metrics is open
// unless admin.metricsToken. Everything else:
//  - with a token (admin.token / SPILLWAY_ADMIN_TOKEN): `Authorization: Bearer <token>` or the
//    session cookie of a browser that signed in (admin-session.ts); any Host;
//  - without a token, on loopback: open, but only to requests addressed to a loopback name (a
//    DNS-rebinding page names its own host) and, for writes, with a JSON body type and no
//    foreign Origin (a cross-site form or "simple" fetch can send neither);
//  - without a token, bound beyond loopback: 401.
// Browser writes (cookie-authenticated) get the same JSON / Origin checks: the session cookie is
// same-site, and a page on another port of the same host is same-site.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN_TOKEN_HOWTO, isLoopbackHost } from '../config/admin-exposure.js';
import { problemBody } from '../core/problems.js';
import { bearerToken, sessionValid, tokenMatches } from './admin-session.js';

export interface AdminGuardOptions {
  /** The admin settings of the running config (a reload may change the token). */
  settings: () => { token?: string | undefined; metricsToken: boolean };
  /** Whether the admin listener is bound to a loopback address. */
  loopbackBind: () => boolean;
}

const ALWAYS_OPEN = new Set(['/healthz', '/readyz']);
/** Reachable before signing in: the sign-in form and the endpoint it posts to. */
const SIGN_IN = new Set(['/admin/login', '/admin/session']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_TYPE = /^application\/([\w.+-]*\+)?json[ \t]*(;|$)/i;

function refuse(reply: FastifyReply, code: 'admin-unauthorized' | 'admin-forbidden', detail: string) {
  reply
    .code(code === 'admin-unauthorized' ? 401 : 403)
    .type('application/problem+json')
    .header('cache-control', 'no-store');
  if (code === 'admin-unauthorized') reply.header('www-authenticate', 'Bearer realm="spillway-admin"');
  return reply.send(problemBody(code, detail));
}

/** The host name of a Host header, without the port ("[::1]:9901" → "[::1]"). */
function hostName(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/** A write a browser on another site could have sent is refused; reads pass. */
function checkBrowserWrite(request: FastifyRequest, reply: FastifyReply) {
  if (SAFE_METHODS.has(request.method)) return undefined;
  const type = request.headers['content-type'];
  // Only POST can come from a cross-site form or a "simple" fetch without a preflight (which the
  // admin listener never answers): DELETE and PUT need no body type to be safe.
  if (request.method === 'POST' && (!type || !JSON_TYPE.test(type))) {
    return refuse(
      reply,
      'admin-forbidden',
      'send Content-Type: application/json (a form or a cross-site request cannot), or use the bearer token',
    );
  }
  const origin = request.headers.origin;
  const host = request.headers.host;
  if (origin !== undefined && (host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`))) {
    return refuse(reply, 'admin-forbidden', `Origin ${JSON.stringify(origin)} is not this admin listener`);
  }
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') {
    return refuse(reply, 'admin-forbidden', 'the browser says this request comes from another site');
  }
  return undefined;
}

export function registerAdminGuard(app: FastifyInstance, options: AdminGuardOptions): void {
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    if (ALWAYS_OPEN.has(path)) return;
    const { token, metricsToken } = options.settings();
    if (path === '/metrics' && !metricsToken) return;

    if (token === undefined) {
      if (!options.loopbackBind()) {
        return refuse(reply, 'admin-unauthorized', `the admin listener is not on loopback and has no token: ${ADMIN_TOKEN_HOWTO}`);
      }
      const host = request.headers.host;
      if (host !== undefined && !isLoopbackHost(hostName(host))) {
        return refuse(
          reply,
          'admin-forbidden',
          `Host ${JSON.stringify(host)} is not a loopback name: without a token the admin listener answers only requests to localhost, 127.0.0.1 or [::1]`,
        );
      }
      return checkBrowserWrite(request, reply);
    }

    const bearer = bearerToken(request.headers.authorization);
    if (bearer !== undefined) {
      if (tokenMatches(bearer, token)) return;
      return refuse(reply, 'admin-unauthorized', 'the bearer token is not the admin token');
    }
    if (SIGN_IN.has(path)) return;
    if (sessionValid(request.headers.cookie, token)) return checkBrowserWrite(request, reply);
    // A browser opening the console without a session is sent to the sign-in form.
    if (request.method === 'GET' && (path === '/' || path === '/console' || path === '/console/')) {
      return reply.code(303).header('location', '/admin/login').header('cache-control', 'no-store').send();
    }
    return refuse(reply, 'admin-unauthorized', 'send Authorization: Bearer <admin token>, or sign in at /admin/login');
  });
}
