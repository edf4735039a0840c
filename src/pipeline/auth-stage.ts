// Stage 3a: a route's client authentication, before its rate limits, for HTTP requests and
// WebSocket handshakes alike. The identity proved goes on to the rate-limit stage (`key: auth`).

import type { IncomingMessage } from 'node:http';
import type { AuthVerdict, RouteAuth } from '../auth/route-auth.js';
import type { ClientPort } from './limit-stage.js';

export function enforceAuth<Client>(
  auth: RouteAuth,
  req: IncomingMessage,
  client: Client,
  port: ClientPort<Client>,
  next: (identity: string) => void,
): void {
  const verdict = auth.check(req);
  if (verdict instanceof Promise) {
    verdict.then(
      (settled) => {
        if (!port.isGone(client)) apply(settled, client, port, next);
      },
      (error: unknown) => port.problem(client, 'internal', `authentication failed: ${(error as Error).message}`),
    );
  } else {
    apply(verdict, client, port, next);
  }
}

function apply<Client>(verdict: AuthVerdict, client: Client, port: ClientPort<Client>, next: (identity: string) => void): void {
  switch (verdict.kind) {
    case 'ok':
      next(verdict.identity);
      return;
    case 'repeated':
      port.problem(client, 'bad-request', `the ${verdict.header} header is sent more than once; send one key`);
      return;
    case 'refused':
      port.problem(
        client,
        'client-unauthenticated',
        verdict.detail,
        verdict.challenge ? { headers: { 'www-authenticate': verdict.challenge } } : {},
      );
  }
}
