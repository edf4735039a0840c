// A route's `auth`: the request proves who it is with an API key or a bearer JWT (verified as
// rate-limit `jwt` keys are), or it is refused. Either configured method suffices. The identity
// proved is the default rate-limit key (`key: auth`).

import type { IncomingMessage } from 'node:http';
import type { AuthConfig } from '../config/schema/auth.js';
import { claimValue, jwtVerifier, type JwtVerifier } from '../ratelimit/jwt.js';
import { compileApiKeys, type ApiKeyCheck, type LiveApiKeys } from './api-keys.js';

export type AuthVerdict =
  | { readonly kind: 'ok'; readonly identity: string }
  /** 401: no valid credentials. `challenge` is the WWW-Authenticate value. */
  | { readonly kind: 'refused'; readonly detail: string; readonly challenge: string | undefined }
  /** 400: the key header was sent more than once. */
  | { readonly kind: 'repeated'; readonly header: string };

export interface RouteAuth {
  /** Synchronous for API keys; a promise only when a JWT has to be verified. */
  check(req: IncomingMessage): AuthVerdict | Promise<AuthVerdict>;
}

/** `liveKeys`: the keys of `apiKeys.redisSet`, kept up to date by the state layer. */
export function compileRouteAuth(config: AuthConfig, liveKeys?: LiveApiKeys): RouteAuth {
  const keys: ApiKeyCheck | undefined = config.apiKeys ? compileApiKeys(config.apiKeys, liveKeys) : undefined;
  const jwt = config.jwt;
  const verify: JwtVerifier | undefined = jwt ? jwtVerifier(jwt) : undefined;
  const challenge = jwt ? 'Bearer' : undefined;
  const wanted = [keys ? `an API key in ${keys.header}` : '', jwt ? `a bearer token in ${jwt.header}` : ''].filter(Boolean).join(' or ');

  const viaJwt = async (req: IncomingMessage, keyFailure: string | undefined): Promise<AuthVerdict> => {
    const payload = await verify!(req);
    const identity = payload ? claimValue(payload, jwt!.identity) : undefined;
    if (identity !== undefined) return { kind: 'ok', identity };
    const why = payload ? `the token has no "${jwt!.identity}" claim` : req.headers[jwt!.header] ? 'the token is not valid' : undefined;
    return { kind: 'refused', detail: `this route needs ${wanted}: ${why ?? keyFailure ?? 'none was sent'}`, challenge };
  };

  return {
    check(req) {
      let keyFailure: string | undefined;
      if (keys) {
        const result = keys.check(req);
        if (result.kind === 'ok' || result.kind === 'repeated') return result;
        if (result.kind === 'invalid') keyFailure = 'the API key is not valid';
      }
      if (verify) return viaJwt(req, keyFailure);
      return { kind: 'refused', detail: `this route needs ${wanted}: ${keyFailure ?? 'none was sent'}`, challenge };
    },
  };
}
